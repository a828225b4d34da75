"""The SQL files (billing/sql, proxy/sql) reach every database: after every
migrate they are installed again wherever the database differs from them, and
the difference is checked (billing/sql_install.py)."""

from __future__ import annotations

import threading
import time

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from billing.ledger.debits import balance_debit
from billing.ledger.reconciliation import ledger_reconcile
from billing.ledger.sql_install import (
    SqlInstallLockTimeout,
    sql_check,
    sql_drift,
    sql_files,
    sql_install,
)
from tests.support.ledger import USD
from tests.support.world import new_key

LEDGER = "billing/sql/ledger_v1.sql"
PROXY = "proxy/sql/proxy_v1.sql"


def sql_file(path: str):
    return next(f for f in sql_files() if f.path == path)


def bodies_in_database(name: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT prosrc FROM pg_proc WHERE proname = %s"
            " AND pronamespace = current_schema()::regnamespace",
            [name],
        )
        return {row[0] for row in cursor.fetchall()}


def execute(*statements: str) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def migrate() -> None:
    # The test's rows are not committed: their deferred foreign key checks are
    # done now, since PostgreSQL alters no table with checks pending (a real
    # migrate runs in a transaction of its own).
    execute("SET CONSTRAINTS ALL IMMEDIATE")
    call_command("migrate", interactive=False, verbosity=0)


def test_every_function_of_the_code_is_in_the_database_as_written(db):
    files = {f.path: f for f in sql_files()}
    assert {LEDGER, PROXY} <= set(files)
    # The parser sees the functions (a few of each file, by name).
    assert {"billing_refuse_change", "billing_take", "billing_batch"} <= set(
        files[LEDGER].functions
    )
    assert {"apikey_period_start", "proxy_batch"} <= set(files[PROXY].functions)
    compared = 0
    for sql in files.values():
        for name, bodies in sql.functions.items():
            assert bodies_in_database(name) == set(bodies), f"{sql.path}: {name}"
            compared += 1
    assert compared >= 10
    assert sql_drift() == []
    assert sql_check(databases=["default"]) == []


def test_migrate_puts_back_a_function_that_has_an_older_body(alice):
    balance_debit(account=alice.account, amount_nanos=1 * USD, idempotency_key="d1")
    # An older version of the journal's guard, which let every change through.
    execute(
        "CREATE OR REPLACE FUNCTION billing_refuse_change() RETURNS trigger"
        " LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$"
    )
    assert sql_drift() == [
        f"{LEDGER}: function billing_refuse_change differs from the code"
    ]
    [warning] = sql_check(databases=["default"])
    assert warning.id == "billing.W001"
    assert LEDGER in warning.msg and "billing_refuse_change" in warning.msg

    migrate()

    assert bodies_in_database("billing_refuse_change") == set(
        sql_file(LEDGER).functions["billing_refuse_change"]
    )
    assert sql_drift() == []
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
    ):
        execute(
            f"DELETE FROM billing_ledgerentry WHERE account_id = {alice.account.pk}"
        )


def test_the_check_names_each_difference_and_migrate_mends_them_all(db):
    execute(
        # An overload the code does not define (an older signature).
        "CREATE FUNCTION billing_take(p_account bigint) RETURNS bigint"
        " LANGUAGE sql AS $$ SELECT p_account $$",
        # A function gone from the database.
        "DROP FUNCTION apikey_period_start(text, timestamptz)",
        # A trigger someone switched off.
        "ALTER TABLE billing_lotmovement"
        " DISABLE TRIGGER billing_lotmovement_no_truncate",
        # A file installed from another version of it.
        f"UPDATE sql_installed SET sha256 = 'abc123' WHERE path = '{PROXY}'",
        # A function the ledger's file had when it was installed, since removed.
        "CREATE FUNCTION billing_gone() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$",
        "UPDATE sql_installed SET functions = functions || '{billing_gone}'"
        f" WHERE path = '{LEDGER}'",
    )

    assert sorted(sql_drift()) == sorted(
        [
            f"{LEDGER}: function billing_take(bigint) is not in the code",
            f"{LEDGER}: function billing_gone() is not in the code",
            f"{LEDGER}: trigger billing_lotmovement_no_truncate on billing_lotmovement"
            " is disabled",
            f"{PROXY}: installed from another version (sha256 abc123, the code's"
            f" is {sql_file(PROXY).sha256[:12]})",
            f"{PROXY}: function apikey_period_start is missing",
        ]
    )
    warned = [warning.msg for warning in sql_check(databases=["default"])]
    assert len(warned) == 2  # one per file
    assert LEDGER in warned[0] and "billing_gone" in warned[0]
    assert PROXY in warned[1] and "apikey_period_start" in warned[1]

    migrate()

    assert sql_drift() == []
    assert bodies_in_database("billing_gone") == set()
    assert bodies_in_database("billing_take") == set(
        sql_file(LEDGER).functions["billing_take"]
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT sha256 FROM sql_installed WHERE path = %s", [PROXY])
        assert cursor.fetchone()[0] == sql_file(PROXY).sha256


def test_migrate_leaves_a_database_that_matches_alone(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT path, installed_at FROM sql_installed ORDER BY path")
        before = cursor.fetchall()
    assert [path for path, _ in before] == sorted(f.path for f in sql_files())

    migrate()

    with connection.cursor() as cursor:
        cursor.execute("SELECT path, installed_at FROM sql_installed ORDER BY path")
        assert cursor.fetchall() == before


def test_every_file_can_run_again(alice):
    execute("SET CONSTRAINTS ALL IMMEDIATE")  # as in migrate() above
    # Installing twice over a database in use: each statement can be repeated.
    every = [f.path for f in sql_files()]
    assert sql_install(force=True) == every
    assert sql_install(force=True) == every
    assert sql_install() == []
    assert sql_drift() == []
    balance_debit(
        account=alice.account, amount_nanos=1 * USD, idempotency_key=new_key()
    )


def test_the_nightly_reconciliation_reports_a_function_that_differs(db):
    execute(
        "CREATE OR REPLACE FUNCTION apikey_period_start(p_reset text,"
        " p_now timestamptz) RETURNS timestamptz LANGUAGE sql IMMUTABLE"
        " AS $$ SELECT p_now $$"
    )

    run = ledger_reconcile()

    assert run.drift_count == 1
    assert run.drifts == [
        {
            "check": "sql_matches_code",
            "account_id": None,
            "detail": f"{PROXY}: function apikey_period_start differs from the code",
        }
    ]


def test_an_install_waits_for_the_journal_s_lock_a_bounded_time(db, settings):
    # A live database: a transaction that writes the journal is open. The
    # install's CREATE OR REPLACE TRIGGER needs SHARE ROW EXCLUSIVE on the
    # table, which conflicts with the writer's ROW EXCLUSIVE: waiting without
    # end would queue every settle behind the install.
    settings.SQL_INSTALL_LOCK_TIMEOUT = 0.2
    settings.SQL_INSTALL_LOCK_ATTEMPTS = 3
    settings.SQL_INSTALL_LOCK_BACKOFF = 0.05
    execute("SET CONSTRAINTS ALL IMMEDIATE")  # as in migrate() above
    billing = apps.get_app_config("billing")
    locked, release = threading.Event(), threading.Event()

    def writer() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("LOCK TABLE billing_ledgerentry IN ROW EXCLUSIVE MODE")
                locked.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert locked.wait(timeout=10)
        started = time.monotonic()
        with pytest.raises(SqlInstallLockTimeout) as failed:
            sql_install(app_config=billing, force=True)
        elapsed = time.monotonic() - started
    finally:
        release.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    message = str(failed.value)
    assert LEDGER in message and "billing_ledgerentry" in message
    assert "0.2 s" in message and "3 attempts" in message
    # Three waits of 0.2 s and two pauses (0.05 s, 0.1 s), not an endless wait.
    assert 0.6 <= elapsed < 3
    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone()[0] == "0"  # the test's transaction keeps its own

    # The writer has committed: the same install goes through.
    assert LEDGER in sql_install(app_config=billing, force=True)
    assert sql_drift() == []
