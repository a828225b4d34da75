"""Credits in: operators' grants (gifts, referral rewards, compensations,
adjustments) and paid top-ups with their bonus, written with the ORM under the
wallet row lock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, User
from billing.errors import InvalidAmount
from billing.ledger.debits import balance_debit
from billing.ledger.journal import entry_replayed, lot_credit
from billing.ledger.models import CreditLot, EntryKind, LedgerEntry, LotSource, Pool
from billing.ledger.validation import amount_check, choice_check
from billing.ledger.wallets import wallet_lock
from money import format_usd, percent_of

GRANT_SOURCES = {
    LotSource.GIFT,
    LotSource.REFERRAL,
    LotSource.COMPENSATION,
    LotSource.ADJUSTMENT,
}


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
    method: str = "Platform",
) -> LedgerEntry:
    """Grant a gift, referral reward, compensation or adjustment.

    ``method`` is what the history shows beside the kind (a program's name:
    "AI insurance", "Discount"); an operator's grant is the platform's.

    Credits go to the bonus pool; an adjustment may name the top-up pool. Only an
    adjustment may be negative: it takes credits back from its pool (bonus lots
    in the spending order) and is refused if that would leave the pool, or what
    is available, below zero.
    """
    source = choice_check(LotSource, source, "source")
    if source not in GRANT_SOURCES:
        raise InvalidAmount(
            f"{source} credits are not granted by hand; grant one of "
            f"{', '.join(sorted(GRANT_SOURCES))}"
        )
    pool = choice_check(Pool, pool or Pool.BONUS, "pool")
    if pool == Pool.TOPUP and source != LotSource.ADJUSTMENT:
        raise InvalidAmount("only an adjustment may go to the top-up pool")
    amount_check(amount_nanos, allow_negative=source == LotSource.ADJUSTMENT)
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
    wallet = wallet_lock(account)
    previous = entry_replayed(account, idempotency_key, source, amount_nanos)
    if previous is not None:
        return previous
    entry, _ = lot_credit(
        wallet,
        source=source,
        pool=pool,
        amount_nanos=amount_nanos,
        expires_at=expires_at,
        kind=source,
        idempotency_key=idempotency_key,
        description=reason,
        reference=reference,
        method=method,
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
    amount_check(amount_nanos, allow_negative=False)
    wallet = wallet_lock(account)
    previous = entry_replayed(account, idempotency_key, EntryKind.TOPUP, amount_nanos)
    if previous is not None:
        topup_lot = CreditLot.objects.get(entry=previous)
        bonus_lot = CreditLot.objects.filter(parent=topup_lot).first()
        return TopUpCredit(
            previous, bonus_lot.entry if bonus_lot else None, topup_lot, bonus_lot
        )
    description = description or f"Top-up of {format_usd(amount_nanos)}"
    topup_entry, topup_lot = lot_credit(
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
    bonus_entry, bonus_lot = lot_credit(
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
