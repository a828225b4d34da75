"""Alerts in tests: spending as the settle path records it (a usage entry in
the journal, and the key's use in its period), and the emails sent."""

from __future__ import annotations

from datetime import datetime

from django.core import mail
from django.db.models import F

from accounts.models import Account
from apikeys.models import ApiKey
from billing.ledger.debits import balance_debit
from billing.models import EntryKind
from money import usd_to_nanos
from tests.support.world import new_key


def spend(account: Account, amount: str, *, key: ApiKey | None = None) -> None:
    """Debit ``amount`` (USD) as usage; with ``key``, count it against the
    key's credit limit in its current period too, as proxy_batch does."""
    nanos = usd_to_nanos(amount)
    balance_debit(
        account=account,
        amount_nanos=nanos,
        idempotency_key=new_key("usage"),
        kind=EntryKind.USAGE,
    )
    if key is not None:
        ApiKey.objects.filter(pk=key.pk).update(
            used_nanos=F("used_nanos") + nanos,
            period_used_nanos=F("period_used_nanos") + nanos,
        )


def key_period_begins(key: ApiKey, at: datetime) -> None:
    """The proxy started the key's period at ``at`` (its first hold in it)."""
    ApiKey.objects.filter(pk=key.pk).update(period_start=at, period_used_nanos=0)


def emails_to(address: str) -> list:
    return [message for message in mail.outbox if message.to == [address]]
