"""Every write to the ledger.

Credits (grants, top-ups, reversals of debits) are written here with the ORM
under the wallet row lock. Debits and hold settlements run as one SQL function
call each (``billing/sql/ledger_v1.sql``): on a hot account the wallet lock is
then held for one statement and its commit, not for a conversation with Python.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Account, User
from billing.errors import (
    BillingError,
    HoldNotFound,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidAmount,
    LedgerDrift,
    ReversalRefused,
)
from billing.models import (
    CreditLot,
    EntryKind,
    Hold,
    HoldState,
    LedgerEntry,
    LotMovement,
    LotSource,
    Pool,
    Wallet,
)
from money import MAX_NANOS, format_usd, percent_of

logger = logging.getLogger(__name__)

GRANT_SOURCES = {
    LotSource.GIFT,
    LotSource.REFERRAL,
    LotSource.COMPENSATION,
    LotSource.ADJUSTMENT,
}


def wallet_open(*, account: Account) -> Wallet:
    wallet, _ = Wallet.objects.get_or_create(account=account)
    return wallet


# --- credits -------------------------------------------------------------------


@transaction.atomic
def credit_grant(
    *,
    account: Account,
    source: LotSource | str,
    amount_nanos: int,
    reason: str,
    actor: User | None,
    idempotency_key: str,
    pool: Pool | str | None = None,
    expires_at: datetime | None = None,
    reference: str = "",
) -> LedgerEntry:
    """Grant a gift, referral reward, compensation or adjustment.

    Credits go to the bonus pool; an adjustment may name the top-up pool. Only an
    adjustment may be negative: it takes credits back from its pool (bonus lots
    in the spending order) and is refused if that would leave the pool, or what
    is available, below zero.
    """
    source = _choice(LotSource, source, "source")
    if source not in GRANT_SOURCES:
        raise InvalidAmount(
            f"{source} credits are not granted by hand; grant one of "
            f"{', '.join(sorted(GRANT_SOURCES))}"
        )
    pool = _choice(Pool, pool or Pool.BONUS, "pool")
    if pool == Pool.TOPUP and source != LotSource.ADJUSTMENT:
        raise InvalidAmount("only an adjustment may go to the top-up pool")
    _check_amount(amount_nanos, allow_negative=source == LotSource.ADJUSTMENT)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidAmount("a reason is required")
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidAmount("the expiry must be in the future")
    if amount_nanos < 0:
        if expires_at is not None:
            raise InvalidAmount("a negative adjustment cannot expire")
        result = balance_debit(
            account=account,
            amount_nanos=-amount_nanos,
            kind=EntryKind.ADJUSTMENT,
            idempotency_key=idempotency_key,
            description=reason,
            reference=reference,
            actor=actor,
            pool=pool,
        )
        return result.entry
    wallet = _lock_wallet(account)
    previous = _replay(account, idempotency_key, source, amount_nanos)
    if previous is not None:
        return previous
    entry, _ = _credit_lot(
        wallet,
        source=source,
        pool=pool,
        amount_nanos=amount_nanos,
        expires_at=expires_at,
        kind=source,
        idempotency_key=idempotency_key,
        description=reason,
        reference=reference,
        method="Platform",
        actor=actor,
    )
    return entry


@dataclass(frozen=True)
class TopUpCredit:
    topup_entry: LedgerEntry
    bonus_entry: LedgerEntry | None
    topup_lot: CreditLot
    bonus_lot: CreditLot | None


@transaction.atomic
def topup_credit(
    *,
    account: Account,
    amount_nanos: int,
    idempotency_key: str,
    reference: str,
    method: str = "",
    description: str = "",
) -> TopUpCredit:
    """Credit a paid top-up of X: a top-up lot of X and a bonus lot of
    BONUS_RATE × X that expires after BONUS_EXPIRY_DAYS, in one transaction.

    Called once per successful payment; the same idempotency key again answers
    with the first result.
    """
    _check_amount(amount_nanos, allow_negative=False)
    wallet = _lock_wallet(account)
    previous = _replay(account, idempotency_key, EntryKind.TOPUP, amount_nanos)
    if previous is not None:
        topup_lot = CreditLot.objects.get(entry=previous)
        bonus_lot = CreditLot.objects.filter(parent=topup_lot).first()
        return TopUpCredit(
            previous, bonus_lot.entry if bonus_lot else None, topup_lot, bonus_lot
        )
    description = description or f"Top-up of {format_usd(amount_nanos)}"
    topup_entry, topup_lot = _credit_lot(
        wallet,
        source=LotSource.TOPUP,
        pool=Pool.TOPUP,
        amount_nanos=amount_nanos,
        expires_at=None,
        kind=EntryKind.TOPUP,
        idempotency_key=idempotency_key,
        description=description,
        reference=reference,
        method=method,
        actor=None,
    )
    bonus_nanos = percent_of(amount_nanos, settings.BONUS_RATE)
    if bonus_nanos <= 0:
        return TopUpCredit(topup_entry, None, topup_lot, None)
    bonus_entry, bonus_lot = _credit_lot(
        wallet,
        source=LotSource.BONUS,
        pool=Pool.BONUS,
        amount_nanos=bonus_nanos,
        expires_at=topup_entry.created_at + timedelta(days=settings.BONUS_EXPIRY_DAYS),
        kind=EntryKind.BONUS,
        idempotency_key=f"{idempotency_key}:bonus",
        description=f"{settings.BONUS_RATE * 100:.0f}% bonus on a top-up of "
        f"{format_usd(amount_nanos)}",
        reference=reference,
        method="Top-up bonus",
        actor=None,
        parent=topup_lot,
    )
    return TopUpCredit(topup_entry, bonus_entry, topup_lot, bonus_lot)


# --- debits and holds ------------------------------------------------------------


@dataclass(frozen=True)
class Debit:
    entry_id: int
    replayed: bool

    @property
    def entry(self) -> LedgerEntry:
        return LedgerEntry.objects.get(pk=self.entry_id)


@dataclass(frozen=True)
class DebitRequest:
    amount_nanos: int
    idempotency_key: str
    description: str = ""
    reference: str = ""


def balance_debit(
    *,
    account: Account,
    amount_nanos: int,
    idempotency_key: str,
    description: str = "",
    reference: str = "",
    kind: EntryKind | str = EntryKind.USAGE,
    actor: User | None = None,
    pool: Pool | str | None = None,
) -> Debit:
    """Debit what is available (total minus held) in the spending order.

    One SQL statement, atomic on its own (see the module docstring); refused with
    InsufficientCredits, writing nothing, if the balance does not cover it.
    """
    (outcome,) = balance_debit_many(
        account=account,
        debits=[DebitRequest(amount_nanos, idempotency_key, description, reference)],
        kind=kind,
        actor=actor,
        pool=pool,
    )
    if isinstance(outcome, BillingError):
        raise outcome
    return outcome


def balance_debit_many(
    *,
    account: Account,
    debits: list[DebitRequest],
    kind: EntryKind | str = EntryKind.USAGE,
    actor: User | None = None,
    pool: Pool | str | None = None,
) -> list[Debit | BillingError]:
    """Several debits of one account under one lock and one commit.

    Each gets its own journal entry, or is refused on its own (the error is
    returned in its place, nothing of it written); the others go through.
    """
    kind = _choice(EntryKind, kind, "kind")
    if kind in (EntryKind.TOPUP, EntryKind.BONUS, EntryKind.EXPIRY):
        raise InvalidAmount(f"a {kind} entry is never a debit")
    pool = _choice(Pool, pool, "pool") if pool else None
    for debit in debits:
        _check_amount(debit.amount_nanos, allow_negative=False)
        if not debit.idempotency_key:
            raise InvalidAmount("an idempotency key is required")
    rows = _call(
        "SELECT entry_id, replayed, error, available "
        "FROM billing_debit_many(%s, %s, %s, %s, %s, %s, %s, %s)",
        [
            account.pk,
            kind,
            [d.amount_nanos for d in debits],
            [d.idempotency_key for d in debits],
            [d.description[:500] for d in debits],
            [d.reference[:200] for d in debits],
            actor.pk if actor else None,
            pool,
        ],
    )
    return [
        _debit_outcome(debit, *row) for debit, row in zip(debits, rows, strict=True)
    ]


def _debit_outcome(
    debit: DebitRequest, entry_id, replayed: bool, error: str | None, available: int
) -> Debit | BillingError:
    if error is None:
        return Debit(entry_id, replayed)
    if error == InsufficientCredits.code:
        return InsufficientCredits(
            f"insufficient credits: {format_usd(available, 9)} available, "
            f"{format_usd(debit.amount_nanos, 9)} needed",
            available_nanos=available,
            needed_nanos=debit.amount_nanos,
        )
    if error.startswith("idempotency key"):
        return IdempotencyConflict(error)
    return InvalidAmount(error)


def hold_place(
    *,
    account: Account,
    amount_nanos: int,
    reference: str = "",
    ttl: timedelta | None = None,
) -> Hold:
    """Set credits aside for a request in flight: one conditional UPDATE of the
    wallet (refused when available < amount) and the hold row, in one statement."""
    _check_amount(amount_nanos, allow_negative=False)
    now = timezone.now()
    hold_id = uuid.uuid4()
    expires_at = now + (settings.HOLD_TTL if ttl is None else ttl)
    row = _call_one(
        """
        WITH wallet AS (
            UPDATE billing_wallet SET held_nanos = held_nanos + %(amount)s,
                                      updated_at = %(now)s
             WHERE account_id = %(account)s
               AND topup_nanos + bonus_nanos - held_nanos >= %(amount)s
            RETURNING account_id
        )
        INSERT INTO billing_hold (id, account_id, amount_nanos, state, reference,
                                  created_at, expires_at, cost_nanos, charged_nanos)
        SELECT %(id)s, account_id, %(amount)s, 'active', %(reference)s,
               %(now)s, %(expires)s, 0, 0
          FROM wallet
        RETURNING id
        """,
        {
            "amount": amount_nanos,
            "now": now,
            "account": account.pk,
            "id": hold_id,
            "reference": reference[:200],
            "expires": expires_at,
        },
        allow_empty=True,
    )
    if row is None:
        available = balance_available(account=account)
        raise InsufficientCredits(
            f"insufficient credits: {format_usd(available, 9)} available, "
            f"{format_usd(amount_nanos, 9)} needed",
            available_nanos=available,
            needed_nanos=amount_nanos,
        )
    return Hold(
        id=hold_id,
        account=account,
        amount_nanos=amount_nanos,
        state=HoldState.ACTIVE,
        reference=reference[:200],
        created_at=now,
        expires_at=expires_at,
    )


@dataclass(frozen=True)
class Settlement:
    entry_id: int | None
    charged_nanos: int
    shortfall_nanos: int
    replayed: bool


def hold_settle(
    *, hold_id: uuid.UUID, cost_nanos: int, description: str = "", reference: str = ""
) -> Settlement:
    """Release the hold and charge the request's actual cost (bonus first).

    A cost of 0 only releases. Settling twice answers with the first result.
    """
    _check_amount(cost_nanos, allow_negative=False, allow_zero=True)
    entry_id, charged, shortfall, replayed = _call_one(
        "SELECT entry_id, charged_nanos, shortfall_nanos, replayed "
        "FROM billing_hold_settle(%s, %s, %s, %s)",
        [hold_id, cost_nanos, description[:500], reference[:200]],
    )
    if shortfall:
        logger.warning(
            "hold %s settled short: cost %d nanos, charged %d",
            hold_id,
            cost_nanos,
            charged,
        )
    return Settlement(entry_id, charged, shortfall, replayed)


def hold_release(*, hold_id: uuid.UUID) -> bool:
    """Release a hold without charging; False if it was no longer active."""
    (released,) = _call_one(
        "SELECT billing_hold_release(%s, %s)", [hold_id, HoldState.RELEASED]
    )
    return released


def holds_sweep_stale(*, now: datetime | None = None) -> int:
    """Release the holds whose request never settled (a crashed worker)."""
    now = now or timezone.now()
    stale = Hold.objects.filter(
        state=HoldState.ACTIVE, expires_at__lte=now
    ).values_list("id", flat=True)
    released = 0
    for hold_id in stale.iterator():
        (done,) = _call_one(
            "SELECT billing_hold_release(%s, %s, %s)",
            [hold_id, HoldState.EXPIRED, now],
        )
        if done:
            released += 1
            logger.warning("released stale hold %s", hold_id)
    return released


# --- expiry ----------------------------------------------------------------------


@transaction.atomic
def lot_expire(*, lot_id: int, now: datetime | None = None) -> LedgerEntry | None:
    """Move what remains of an expired lot into an ``expiry`` entry.

    Safe to run twice and beside debits: under the wallet lock it expires only
    what still remains. Credits held by requests in flight are left for a later
    run (a settle spends the soonest-expiring lot first anyway).
    """
    now = now or timezone.now()
    account_id = CreditLot.objects.values_list("account_id", flat=True).get(pk=lot_id)
    wallet = Wallet.objects.select_for_update().get(account_id=account_id)
    lot = CreditLot.objects.get(pk=lot_id)
    if lot.expires_at is None or lot.expires_at > now or lot.remaining_nanos == 0:
        return None
    amount = min(lot.remaining_nanos, wallet.available_nanos)
    if amount <= 0:
        return None
    sequence = LotMovement.objects.filter(lot=lot).count()
    return _apply(
        wallet,
        kind=EntryKind.EXPIRY,
        moves=[(lot, -amount)],
        idempotency_key=f"expiry:{lot.pk}:{sequence}",
        description=f"{lot.get_source_display()} credits expired",
        reference=f"lot:{lot.pk}",
        method="Expiry",
        actor=None,
        now=now,
    )


def lots_expire_due(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    due = CreditLot.objects.filter(remaining_nanos__gt=0, expires_at__lte=now)
    expired = 0
    for lot_id in due.values_list("id", flat=True).iterator():
        if lot_expire(lot_id=lot_id, now=now) is not None:
            expired += 1
    return expired


# --- refunds and disputes -------------------------------------------------------


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
    """
    kind = _choice(EntryKind, kind, "kind")
    if kind not in (EntryKind.REFUND, EntryKind.DISPUTE):
        raise InvalidAmount("a claw-back is a refund or a dispute")
    _check_amount(amount_nanos, allow_negative=False)
    wallet = _lock_wallet(topup_entry.account)
    previous = LedgerEntry.objects.filter(
        account_id=wallet.account_id, idempotency_key=idempotency_key
    ).first()
    if previous is not None:
        return ClawBack(previous, 0, 0, 0)
    topup_lot = CreditLot.objects.get(entry=topup_entry, source=LotSource.TOPUP)
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
    entry = _apply(
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


# --- corrections -----------------------------------------------------------------


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
    wallet = _lock_wallet(entry.account)
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
    return _apply(
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


# --- internals -------------------------------------------------------------------


def _lock_wallet(account: Account) -> Wallet:
    try:
        return Wallet.objects.select_for_update().get(account=account)
    except Wallet.DoesNotExist:
        # Opened with the account (billing.receivers); an account made around
        # save() gets its wallet on first use.
        wallet_open(account=account)
        return Wallet.objects.select_for_update().get(account=account)


def _replay(
    account: Account, key: str, kind: str, amount_nanos: int
) -> LedgerEntry | None:
    """The entry an idempotency key already made, if it matches this request."""
    if not key:
        raise InvalidAmount("an idempotency key is required")
    previous = LedgerEntry.objects.filter(account=account, idempotency_key=key).first()
    if previous is None:
        return None
    if previous.kind != kind or previous.amount_nanos != amount_nanos:
        raise IdempotencyConflict(
            f"idempotency key {key!r} was already used for a {previous.kind} of "
            f"{format_usd(previous.amount_nanos, 9)}"
        )
    return previous


def _credit_lot(
    wallet: Wallet,
    *,
    source: str,
    pool: str,
    amount_nanos: int,
    expires_at: datetime | None,
    kind: str,
    idempotency_key: str,
    description: str,
    reference: str,
    method: str,
    actor: User | None,
    parent: CreditLot | None = None,
) -> tuple[LedgerEntry, CreditLot]:
    if wallet.total_nanos + amount_nanos > MAX_NANOS:
        raise InvalidAmount(
            "the balance would exceed the largest amount an account holds"
        )
    now = timezone.now()
    lot = CreditLot(
        account_id=wallet.account_id,
        source=source,
        pool=pool,
        amount_nanos=amount_nanos,
        remaining_nanos=0,
        expires_at=expires_at,
        created_at=now,
        parent=parent,
    )
    entry = _apply(
        wallet,
        kind=kind,
        moves=[(lot, amount_nanos)],
        idempotency_key=idempotency_key,
        description=description,
        reference=reference,
        method=method,
        actor=actor,
        now=now,
    )
    return entry, lot


def _apply(
    wallet: Wallet,
    *,
    kind: str,
    moves: list[tuple[CreditLot, int]],
    idempotency_key: str,
    description: str,
    reference: str,
    method: str,
    actor: User | None,
    reverses: LedgerEntry | None = None,
    now: datetime | None = None,
) -> LedgerEntry:
    """Write one journal entry that moves credits in and out of lots, with its
    movements and the wallet's new balances. The caller holds the wallet lock;
    a lot without a primary key is new and is created by its movement."""
    now = now or timezone.now()
    topup_delta = sum(d for lot, d in moves if lot.pool == Pool.TOPUP)
    bonus_delta = sum(d for lot, d in moves if lot.pool == Pool.BONUS)
    wallet.topup_nanos += topup_delta
    wallet.bonus_nanos += bonus_delta
    if wallet.topup_nanos < 0 or wallet.bonus_nanos < 0:
        raise LedgerDrift(f"wallet of account {wallet.account_id} would go negative")
    entry = LedgerEntry.objects.create(
        account_id=wallet.account_id,
        kind=kind,
        amount_nanos=topup_delta + bonus_delta,
        topup_delta_nanos=topup_delta,
        bonus_delta_nanos=bonus_delta,
        topup_balance_nanos=wallet.topup_nanos,
        bonus_balance_nanos=wallet.bonus_nanos,
        created_at=now,
        description=description[:500],
        reference=reference[:200],
        method=method[:100],
        actor=actor,
        reverses=reverses,
        idempotency_key=idempotency_key,
    )
    for lot, delta in moves:
        lot.remaining_nanos += delta
        if lot.pk is None:
            lot.entry = entry
            lot.save()
        else:
            CreditLot.objects.filter(pk=lot.pk).update(
                remaining_nanos=F("remaining_nanos") + delta
            )
    LotMovement.objects.bulk_create(
        [LotMovement(entry=entry, lot=lot, delta_nanos=delta) for lot, delta in moves]
    )
    wallet.updated_at = now
    wallet.save(update_fields=["topup_nanos", "bonus_nanos", "updated_at"])
    return entry


def balance_available(*, account: Account) -> int:
    wallet = Wallet.objects.filter(account=account).first()
    return wallet.available_nanos if wallet else 0


def _check_amount(
    amount: object, *, allow_negative: bool, allow_zero: bool = False
) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidAmount(
            f"amounts are whole nano-USD integers, not {type(amount).__name__}"
        )
    if amount == 0 and not allow_zero:
        raise InvalidAmount("the amount must not be zero")
    if amount < 0 and not allow_negative:
        raise InvalidAmount("the amount must be positive")
    if abs(amount) > MAX_NANOS:
        raise InvalidAmount("the amount is larger than an account can hold")


def _choice(choices, value, field: str):
    if value in choices.values:
        return choices(value)
    raise InvalidAmount(
        f"unknown {field} {value!r}; expected one of {', '.join(choices.values)}"
    )


_SQLSTATE_ERRORS = {
    "AP002": IdempotencyConflict,
    "AP003": InvalidAmount,
    "AP004": BillingError,
    "AP005": HoldNotFound,
    "AP008": LedgerDrift,
    "22003": InvalidAmount,  # numeric value out of range
}


def _call(sql: str, params) -> list[tuple]:
    """Run one statement and return its rows, mapping the ledger's SQL errors to
    BillingError. Outside a transaction the statement commits on its own (one
    round trip); inside one it gets a savepoint so that a refusal does not break
    the caller's transaction."""
    try:
        if connection.in_atomic_block:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    except DatabaseError as exc:
        error = _billing_error(exc)
        if error is None:
            raise
        raise error from exc


def _call_one(sql: str, params, *, allow_empty: bool = False):
    rows = _call(sql, params)
    if not rows and not allow_empty:
        raise LedgerDrift("the ledger function returned nothing")
    return rows[0] if rows else None


def _billing_error(exc: DatabaseError) -> BillingError | None:
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    diag = getattr(cause, "diag", None)
    message = (diag.message_primary if diag else None) or str(exc)
    error_class = _SQLSTATE_ERRORS.get(sqlstate)
    return error_class(message) if error_class else None
