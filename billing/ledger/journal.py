"""Journal entries written from Python, under the wallet lock the caller holds:
credits to new lots, and moves in and out of existing ones (expiry, claw-backs,
reversals). Debits and settlements are written by the SQL functions instead."""

from __future__ import annotations

from datetime import datetime

from django.db.models import F
from django.utils import timezone

from accounts.models import Account, User
from billing.errors import IdempotencyConflict, InvalidAmount, LedgerDrift
from billing.ledger.models import CreditLot, LedgerEntry, LotMovement, Pool, Wallet
from money import MAX_NANOS, format_usd


def entry_replayed(
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


def lot_credit(
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
    """A new lot of credits and the entry that credits it."""
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
    entry = entry_write(
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


def entry_write(
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
