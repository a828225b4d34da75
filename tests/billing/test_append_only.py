"""The journal is append-only: the database itself refuses UPDATE, DELETE and
TRUNCATE."""

from __future__ import annotations

import psycopg
import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from billing.ledger.debits import balance_debit
from billing.models import LedgerEntry, LotMovement
from tests.support.ledger import USD, assert_ledger_whole, counts
from tests.support.world import new_key

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


@pytest.mark.parametrize(
    "sql", ["TRUNCATE billing_ledgerentry CASCADE", "TRUNCATE billing_lotmovement"]
)
def test_truncate_cannot_empty_the_journal(alice, sql):
    before = journal(alice.account), counts()
    with connection.cursor() as cursor:
        # The fixture's rows are not committed: PostgreSQL truncates no table
        # with foreign key checks pending, so they are done now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    with (
        pytest.raises(DatabaseError, match="append-only: TRUNCATE refused"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        # As in the product, which never allows it (the tests' sessions do,
        # for Django's flush: see tests/conftest.py).
        cursor.execute("SET LOCAL agipower.allow_truncate = off")
        cursor.execute(sql)

    assert (journal(alice.account), counts()) == before
    assert_ledger_whole(alice.account)


@pytest.mark.django_db(transaction=True)
def test_a_session_that_does_not_allow_it_cannot_truncate(alice):
    # A session of its own, as a server's or psql's would be: nothing set.
    params = connection.settings_dict
    conninfo = {
        "dbname": params["NAME"],
        "user": params["USER"],
        "password": params["PASSWORD"],
        "host": params["HOST"],
        "port": params["PORT"],
    }
    with psycopg.connect(
        **{k: v for k, v in conninfo.items() if v}, autocommit=True
    ) as other:
        other.execute("SET lock_timeout = '5s'")
        for table in ("billing_ledgerentry", "billing_lotmovement"):
            with pytest.raises(psycopg.Error, match="append-only: TRUNCATE refused"):
                other.execute(f"TRUNCATE {table} CASCADE")
    assert LedgerEntry.objects.filter(account=alice.account).count() == 1

    # The tests' own sessions may: Django's flush empties the database.
    call_command("flush", interactive=False, verbosity=0)
    assert not LedgerEntry.objects.exists()
    assert not LotMovement.objects.exists()
