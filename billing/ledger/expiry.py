"""Expiry: what remains of a lot past its expiry becomes an ``expiry`` entry,
once, even when the periodic task runs twice or beside a debit."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from billing.ledger.journal import entry_write
from billing.ledger.models import CreditLot, EntryKind, LedgerEntry, LotMovement, Wallet


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
    return entry_write(
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
