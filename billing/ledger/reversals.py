"""Credits taken back: the claw-back of a refunded or disputed top-up, the
reversal of a journal entry that was a mistake (a new entry that names it), and
the revocation of a grant by what remains of it (a program's reward whose
reason went away)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from accounts.models import User
from billing.errors import InsufficientCredits, InvalidAmount, ReversalRefused
from billing.ledger.journal import entry_write
from billing.ledger.models import CreditLot, EntryKind, LedgerEntry, LotSource
from billing.ledger.validation import amount_check, choice_check
from billing.ledger.wallets import wallet_lock
from money import MAX_NANOS, format_usd

# The kinds a grant (``credit_grant``) writes.
GRANT_KINDS = (
    EntryKind.GIFT,
    EntryKind.REFERRAL,
    EntryKind.COMPENSATION,
    EntryKind.ADJUSTMENT,
)


@dataclass(frozen=True)
class ClawBack:
    entry: LedgerEntry | None
    taken_nanos: int  # from the top-up's own lot
    bonus_forfeited_nanos: int
    unrecovered_nanos: int  # already spent: not taken from any other credits


@transaction.atomic
def topup_claw_back(
    *,
    topup_entry: LedgerEntry,
    amount_nanos: int,
    kind: EntryKind | str,
    idempotency_key: str,
    description: str,
    reference: str,
    actor: User | None = None,
) -> ClawBack:
    """Take back credits of a refunded or disputed top-up.

    The rule: what remains of that top-up's own lot is taken back, up to the
    amount; credits of it already spent are not taken from any other credits
    (the part is reported as unrecovered). Its bonus is forfeited in proportion:
    what remains of the bonus lot, up to the bonus on the amount. Credits held by
    requests in flight are not taken (they are counted as unrecovered).

    A gift card's payment takes back, by the same rule, the Gift lot that its
    redemption made (``topup_entry`` is then that entry; a gift has no bonus).
    """
    kind = choice_check(EntryKind, kind, "kind")
    if kind not in (EntryKind.REFUND, EntryKind.DISPUTE):
        raise InvalidAmount("a claw-back is a refund or a dispute")
    amount_check(amount_nanos, allow_negative=False)
    wallet = wallet_lock(topup_entry.account)
    previous = LedgerEntry.objects.filter(
        account_id=wallet.account_id, idempotency_key=idempotency_key
    ).first()
    if previous is not None:
        return ClawBack(previous, 0, 0, 0)
    topup_lot = CreditLot.objects.get(
        entry=topup_entry, source__in=(LotSource.TOPUP, LotSource.GIFT)
    )
    bonus_lot = CreditLot.objects.filter(parent=topup_lot).first()
    available = wallet.available_nanos
    taken = min(amount_nanos, topup_lot.remaining_nanos, available)
    forfeited = 0
    if bonus_lot is not None:
        bonus_share = amount_nanos * bonus_lot.amount_nanos // topup_lot.amount_nanos
        forfeited = min(bonus_share, bonus_lot.remaining_nanos, available - taken)
    moves = [(topup_lot, -taken)] if taken else []
    if forfeited:
        moves.append((bonus_lot, -forfeited))
    unrecovered = amount_nanos - taken
    if not moves:
        return ClawBack(None, 0, 0, unrecovered)
    if unrecovered:
        description = (
            f"{description} ({format_usd(unrecovered)} of it was already spent "
            "and is not taken back)"
        )
    entry = entry_write(
        wallet,
        kind=kind,
        moves=moves,
        idempotency_key=idempotency_key,
        description=description,
        reference=reference,
        method="Stripe",
        actor=actor,
    )
    return ClawBack(entry, taken, forfeited, unrecovered)


@transaction.atomic
def entry_reverse(
    *, entry: LedgerEntry, actor: User | None, reason: str
) -> LedgerEntry:
    """Correct a mistake with a new entry of the same kind and opposite amount.

    A credit is taken back from the lots it created, which must still hold all
    of it; a debit is returned to the lots it was taken from. An expiry, or a
    reversal, is not reversed: grant new credits instead.
    """
    reason = (reason or "").strip()
    if not reason:
        raise InvalidAmount("a reason is required")
    wallet = wallet_lock(entry.account)
    entry = LedgerEntry.objects.get(pk=entry.pk)
    if entry.reverses_id is not None:
        raise ReversalRefused(f"entry {entry.pk} is itself a reversal")
    if entry.kind == EntryKind.EXPIRY:
        raise ReversalRefused("expired credits are not revived; grant new credits")
    existing = entry.reversals.first()
    if existing is not None:
        return existing
    moves = []
    for movement in entry.movements.select_related("lot"):
        lot = movement.lot
        if movement.delta_nanos > 0 and lot.remaining_nanos < movement.delta_nanos:
            raise ReversalRefused(
                f"only {format_usd(lot.remaining_nanos, 9)} of the "
                f"{format_usd(movement.delta_nanos, 9)} granted by entry {entry.pk} "
                "remains; adjust by what remains instead"
            )
        moves.append((lot, -movement.delta_nanos))
    given = sum(delta for _, delta in moves if delta > 0)
    if wallet.total_nanos + given > MAX_NANOS:
        raise InvalidAmount(
            "the balance would exceed the largest amount an account holds"
        )
    taken = -sum(delta for _, delta in moves if delta < 0)
    if taken > wallet.available_nanos:
        raise InsufficientCredits(
            f"{format_usd(taken, 9)} of entry {entry.pk} is held by requests in flight",
            available_nanos=wallet.available_nanos,
            needed_nanos=taken,
        )
    return entry_write(
        wallet,
        kind=entry.kind,
        moves=moves,
        idempotency_key=f"reverse:{entry.pk}",
        description=f"Reversal of entry {entry.pk}: {reason}"[:500],
        reference=f"entry:{entry.pk}",
        method=entry.method,
        actor=actor,
        reverses=entry,
    )


@transaction.atomic
def grant_revoke(
    *,
    entry: LedgerEntry,
    reason: str,
    actor: User | None = None,
    up_to_nanos: int | None = None,
) -> LedgerEntry | None:
    """Take back what remains of the lot a grant made, up to ``up_to_nanos``
    (all of it when None): a new entry of the grant's kind that names it.

    Unlike ``entry_reverse``, part of the grant may be spent: what was spent is
    not taken from any other credits, and credits held by requests in flight
    are not taken either (as in ``topup_claw_back``), so no lot and no balance
    goes below zero. Once per grant: it shares ``entry_reverse``'s idempotency
    key and one-reversal-per-entry rule, so a second call (or an earlier
    reversal) answers with that reversal. None when nothing is left to take.
    """
    reason = (reason or "").strip()
    if not reason:
        raise InvalidAmount("a reason is required")
    if up_to_nanos is not None:
        amount_check(up_to_nanos, allow_negative=False)
    wallet = wallet_lock(entry.account)
    entry = LedgerEntry.objects.get(pk=entry.pk)
    if entry.reverses_id is not None:
        raise ReversalRefused(f"entry {entry.pk} is itself a reversal")
    if entry.kind not in GRANT_KINDS or entry.amount_nanos <= 0:
        raise ReversalRefused(f"entry {entry.pk} is not a grant of credits")
    existing = entry.reversals.first()
    if existing is not None:
        return existing
    lot = CreditLot.objects.get(entry=entry)
    taken = min(lot.remaining_nanos, wallet.available_nanos)
    if up_to_nanos is not None:
        taken = min(taken, up_to_nanos)
    if taken <= 0:
        return None
    return entry_write(
        wallet,
        kind=entry.kind,
        moves=[(lot, -taken)],
        idempotency_key=f"reverse:{entry.pk}",
        description=f"Revocation of entry {entry.pk}: {reason}"[:500],
        reference=f"entry:{entry.pk}",
        method=entry.method,
        actor=actor,
        reverses=entry,
    )
