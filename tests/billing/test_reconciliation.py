"""billing.ledger.reconciliation: the checker that every other test relies on."""

from __future__ import annotations

import pytest
from django.db import connection

from billing.ledger.debits import balance_debit
from billing.ledger.holds import hold_place
from billing.ledger.reconciliation import CHECKS, ledger_check, ledger_reconcile
from billing.models import ReconciliationRun
from tests.support.ledger import USD, assert_ledger_whole
from tests.support.world import grant, new_account, new_key


@pytest.mark.django_db(transaction=True)
def test_a_whole_ledger_has_no_drift():
    account = new_account()
    grant(account, 5 * USD)
    balance_debit(account=account, amount_nanos=2 * USD, idempotency_key=new_key())
    hold_place(account=account, amount_nanos=1 * USD)

    assert ledger_check() == []
    run = ledger_reconcile()
    assert (run.drift_count, run.drifts) == (0, [])
    assert run.accounts_checked == 1
    assert run.finished_at is not None
    assert_ledger_whole(account)


@pytest.mark.django_db(transaction=True)
def test_ledger_check_reports_a_wallet_that_disagrees():
    account = new_account()
    other = new_account()
    grant(account, 5 * USD)
    grant(other, 5 * USD)
    # The wallet is a plain row (only the journal is append-only): a stray
    # write there is exactly what the nightly check exists to catch.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE billing_wallet SET bonus_nanos = bonus_nanos + 1, held_nanos = 1"
            " WHERE account_id = %s",
            [account.pk],
        )

    drifts = ledger_check()

    assert {d.check for d in drifts} == {
        "wallet_matches_journal",
        "wallet_matches_lots",
        "latest_entry_matches_wallet",
        "held_matches_holds",
    }
    assert {d.account_id for d in drifts} == {account.pk}
    assert ledger_check(account_ids=[other.pk]) == []
    run = ledger_reconcile()
    assert run.drift_count == 4
    assert ReconciliationRun.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_ledger_check_reports_a_lot_that_disagrees_with_its_movements():
    account = new_account()
    grant(account, 5 * USD)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE billing_creditlot SET remaining_nanos = remaining_nanos - 1"
            " WHERE account_id = %s",
            [account.pk],
        )

    checks = {d.check for d in ledger_check()}

    assert checks == {"wallet_matches_lots", "lot_matches_movements"}


def test_ledger_check_runs_inside_a_transaction(alice):
    # A test, a view under ATOMIC_REQUESTS or an admin action runs inside a
    # transaction that has already queried: ledger_check() must still answer
    # (PostgreSQL refuses SET TRANSACTION ISOLATION LEVEL after a query).
    assert ledger_check() == []


def test_every_check_has_a_description():
    assert set(CHECKS) >= {
        "wallet_matches_journal",
        "wallet_matches_lots",
        "lot_matches_movements",
        "entry_matches_movements",
        "held_matches_holds",
        "nothing_negative",
    }
    assert all(description for description, _ in CHECKS.values())


def test_ledger_check_inside_a_transaction_still_sees_drift(alice):
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE billing_wallet SET topup_nanos = 1 WHERE account_id = %s",
            [alice.account.pk],
        )

    checks = {d.check for d in ledger_check(account_ids=[alice.account.pk])}

    assert "wallet_matches_journal" in checks
    assert "wallet_matches_lots" in checks
