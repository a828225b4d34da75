"""Reads of balances, the credits breakdown and the transaction history."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Sum

from accounts.models import Account
from billing.ledger.models import EntryKind, LedgerEntry, Wallet


@dataclass(frozen=True)
class Balance:
    topup_nanos: int
    bonus_nanos: int
    held_nanos: int

    @property
    def total_nanos(self) -> int:
        return self.topup_nanos + self.bonus_nanos

    @property
    def available_nanos(self) -> int:
        return self.total_nanos - self.held_nanos


def balance_get(*, account: Account) -> Balance:
    wallet = Wallet.objects.filter(account=account).first()
    if wallet is None:  # not opened yet (billing.receivers): nothing in it
        return Balance(0, 0, 0)
    return Balance(wallet.topup_nanos, wallet.bonus_nanos, wallet.held_nanos)


# The credits breakdown's lines and the journal kinds each one sums.
BREAKDOWN_LINES: dict[str, tuple[str, ...]] = {
    "top_ups": (EntryKind.TOPUP,),
    "bonuses": (EntryKind.BONUS,),
    "gifts": (EntryKind.GIFT,),
    "referrals": (EntryKind.REFERRAL,),
    "compensations": (EntryKind.COMPENSATION,),
    "adjustments": (EntryKind.ADJUSTMENT,),
    "expired": (EntryKind.EXPIRY,),
    "usage": (EntryKind.USAGE,),
    "refunds": (EntryKind.REFUND, EntryKind.DISPUTE),
}


def breakdown_get(*, account: Account) -> dict[str, int]:
    """Signed sums of the journal per line (expired, usage and refunds are
    negative), and their total, which is the total balance."""
    sums = dict(
        LedgerEntry.objects.filter(account=account)
        .values_list("kind")
        .annotate(total=Sum("amount_nanos"))
        .values_list("kind", "total")
    )
    lines = {
        line: sum(sums.get(kind, 0) for kind in kinds)
        for line, kinds in BREAKDOWN_LINES.items()
    }
    lines["total"] = sum(lines.values())
    return lines


@dataclass(frozen=True)
class Transaction:
    id: str
    created_at: datetime
    amount_nanos: int
    kind: str
    method: str
    description: str
    reference: str
    count: int = 1

    @property
    def kind_label(self) -> str:
        return EntryKind(self.kind).label

    @property
    def method_label(self) -> str:
        return self.method or _DEFAULT_METHODS.get(self.kind, "")


_DEFAULT_METHODS = {
    EntryKind.USAGE: "API usage",
    EntryKind.EXPIRY: "Expiry",
    EntryKind.ADJUSTMENT: "Platform",
    EntryKind.GIFT: "Platform",
    EntryKind.COMPENSATION: "AI insurance",
    EntryKind.REFERRAL: "Referral",
}


# The history's rows: every journal entry but usage, and usage summed by UTC
# day. Named parameters (%(account)s), so that a caller may add its own.
_ROWS = """
    SELECT id::text AS id, created_at, amount_nanos, kind, method, description,
           reference, 1 AS count
      FROM billing_ledgerentry
     WHERE account_id = %(account)s AND kind <> 'usage'
    UNION ALL
    SELECT 'usage-' || to_char(day, 'YYYY-MM-DD'), max(created_at),
           sum(amount_nanos)::bigint, 'usage', '', '', '', count(*)::int
      FROM (SELECT (created_at AT TIME ZONE 'UTC')::date AS day, created_at,
                   amount_nanos
              FROM billing_ledgerentry
             WHERE account_id = %(account)s AND kind = 'usage') AS usage
     GROUP BY day
"""


class TransactionHistory:
    """The account's transaction history, newest first: every journal entry,
    except usage, which is one row per UTC day.

    Sliceable and countable like a queryset, so Django's and DRF's paginators
    page it in the database.
    """

    def __init__(self, account: Account):
        self.account_id = account.pk

    def count(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT count(*) FROM ({_ROWS}) AS rows",  # noqa: S608 - constant
                {"account": self.account_id},
            )
            return cursor.fetchone()[0]

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, key: slice) -> list[Transaction]:
        if not isinstance(key, slice) or key.step is not None:
            raise TypeError("the history is read in pages")
        start = key.start or 0
        limit = None if key.stop is None else max(key.stop - start, 0)
        with connection.cursor() as cursor:
            cursor.execute(
                f"{_ROWS} ORDER BY created_at DESC, id DESC "  # noqa: S608
                "LIMIT %(limit)s OFFSET %(offset)s",
                {"account": self.account_id, "limit": limit, "offset": start},
            )
            return [Transaction(*row) for row in cursor.fetchall()]


def transactions_list(*, account: Account) -> TransactionHistory:
    return TransactionHistory(account)


def transactions_sql(*, account: Account) -> tuple[str, dict]:
    """The account's transaction history as SQL, for a caller that reads it
    in SQL (the CSV export), and its named parameters: the rows of
    ``transactions_list``, unordered, with the columns id, created_at,
    amount_nanos, kind, method (as ``Transaction.method_label`` names it),
    description, reference and count."""
    sql = f"""
        SELECT id, created_at, amount_nanos, kind,
               coalesce(nullif(method, ''), %(default_methods)s::jsonb ->> kind, '')
                   AS method,
               description, reference, count
          FROM ({_ROWS}) AS rows
    """  # noqa: S608 - constant SQL; values are parameters
    methods = {kind.value: label for kind, label in _DEFAULT_METHODS.items()}
    return sql, {"account": account.pk, "default_methods": json.dumps(methods)}
