"""The journal is append-only: the database itself refuses UPDATE and DELETE."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from billing.models import LedgerEntry, LotMovement
from billing.services import balance_debit
from tests.billing.conftest import USD, assert_ledger_whole, counts
from tests.conftest import new_key

STATEMENTS = [
    "UPDATE billing_ledgerentry SET amount_nanos = amount_nanos * 2,"
    " bonus_delta_nanos = bonus_delta_nanos * 2 WHERE account_id = %(account)s",
    "UPDATE billing_ledgerentry SET description = 'edited'"
    " WHERE account_id = %(account)s",
    "DELETE FROM billing_ledgerentry WHERE account_id = %(account)s",
    "UPDATE billing_lotmovement SET delta_nanos = 0 WHERE entry_id IN"
    " (SELECT id FROM billing_ledgerentry WHERE account_id = %(account)s)",
    "DELETE FROM billing_lotmovement WHERE entry_id IN"
    " (SELECT id FROM billing_ledgerentry WHERE account_id = %(account)s)",
]


def journal(account):
    entries = list(LedgerEntry.objects.filter(account=account).order_by("id").values())
    movements = list(
        LotMovement.objects.filter(entry__account=account).order_by("id").values()
    )
    return entries, movements


@pytest.mark.parametrize("sql", STATEMENTS)
def test_raw_sql_cannot_change_the_journal(alice, sql):
    balance_debit(
        account=alice.account, amount_nanos=1 * USD, idempotency_key=new_key()
    )
    before = journal(alice.account), counts()

    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, {"account": alice.account.pk})

    assert (journal(alice.account), counts()) == before
    assert_ledger_whole(alice.account)


def test_the_orm_cannot_change_the_journal_either(alice):
    entry = LedgerEntry.objects.get(account=alice.account)
    before = journal(alice.account)

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).update(
            amount_nanos=1, bonus_delta_nanos=1
        )
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LotMovement.objects.filter(entry=entry).update(delta_nanos=1)
    entry.description = "edited"
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        entry.save()

    assert journal(alice.account) == before
    assert_ledger_whole(alice.account)
