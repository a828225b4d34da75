"""Operators: granting credits in admin and from a shell, the read-only ledger
in admin, and the periodic tasks run by a real Celery worker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from billing.ledger.holds import hold_place
from billing.ledger.selectors import balance_get
from billing.models import (
    CreditLot,
    EntryKind,
    Hold,
    HoldState,
    LedgerEntry,
    ReconciliationRun,
)
from money import usd_to_nanos
from tests.support.world import grant


def _grant_form(client, account, **data):
    page = client.get(f"/admin/accounts/account/{account.pk}/grant/")
    assert page.status_code == 200
    key = page.context["form"].initial["idempotency_key"]
    form = {"source": "gift", "pool": "bonus", "reason": "sorry", **data}
    return client.post(
        f"/admin/accounts/account/{account.pk}/grant/",
        {"idempotency_key": key, **form},
    )


def test_operator_grants_compensation_in_admin_and_is_recorded(client, ops, bob):
    client.force_login(ops)
    response = _grant_form(
        client, bob.account, source="compensation", amount="12.5", reason="outage"
    )
    assert response.status_code == 302
    entry = LedgerEntry.objects.get(account=bob.account)
    assert entry.kind == EntryKind.COMPENSATION
    assert entry.amount_nanos == 12_500_000_000
    assert entry.actor == ops
    assert entry.description == "outage"
    assert balance_get(account=bob.account).bonus_nanos == 12_500_000_000


def test_submitting_the_same_grant_form_twice_grants_once(client, ops, bob):
    client.force_login(ops)
    page = client.get(f"/admin/accounts/account/{bob.account.pk}/grant/")
    form = {
        "idempotency_key": page.context["form"].initial["idempotency_key"],
        "source": "gift",
        "pool": "bonus",
        "amount": "3",
        "reason": "thanks",
    }
    url = f"/admin/accounts/account/{bob.account.pk}/grant/"
    assert client.post(url, form).status_code == 302
    assert client.post(url, form).status_code == 302
    assert LedgerEntry.objects.filter(account=bob.account).count() == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"amount": "99999999999"}, "too large"),
        ({"amount": "1.5e400"}, "not a decimal amount"),
        ({"amount": "1e3"}, "not a decimal amount"),
        ({"amount": "\u0661\u0662"}, "not a decimal amount"),
        ({"amount": "abc"}, "not a decimal amount"),
        ({"amount": "3", "reason": "thanks \u202e"}, "u+202e right-to-left override"),
        ({"amount": "0"}, "must not be zero"),
        ({"amount": "-5"}, "must be positive"),
        ({"amount": "5", "pool": "topup"}, "only an adjustment"),
        (
            {"amount": "-5", "source": "adjustment", "pool": "topup"},
            "insufficient credits",
        ),
    ],
)
def test_bad_grants_in_admin_say_why_and_write_nothing(client, ops, bob, data, message):
    client.force_login(ops)
    response = _grant_form(client, bob.account, **data)
    assert response.status_code == 200
    assert message in response.content.decode().lower()
    assert not LedgerEntry.objects.filter(account=bob.account).exists()


def test_customers_cannot_reach_the_grant_form(client, alice, bob):
    client.force_login(alice)
    response = client.get(f"/admin/accounts/account/{bob.account.pk}/grant/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_admin_shows_the_journal_but_offers_no_change(client, ops, alice):
    client.force_login(ops)
    entry = LedgerEntry.objects.get(account=alice.account)
    assert client.get("/admin/billing/ledgerentry/").status_code == 200
    detail = client.get(f"/admin/billing/ledgerentry/{entry.pk}/change/")
    assert detail.status_code == 200
    assert b'type="submit"' not in detail.content.split(b'id="content"')[1]
    assert client.get("/admin/billing/ledgerentry/add/").status_code == 403
    response = client.post(
        f"/admin/billing/ledgerentry/{entry.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 403
    assert LedgerEntry.objects.filter(pk=entry.pk).exists()
    assert client.get("/admin/accounts/account/?q=alice@").status_code == 200


def test_grant_credits_command_records_kind_reason_and_operator(alice, ops):
    call_command(
        "grant_credits",
        "ALICE@example.com",
        "7.25",
        kind="referral",
        reason="invited bob",
        operator=ops.email,
    )
    entry = LedgerEntry.objects.filter(account=alice.account).latest("id")
    assert (entry.kind, entry.amount_nanos, entry.actor, entry.description) == (
        EntryKind.REFERRAL,
        7_250_000_000,
        ops,
        "invited bob",
    )


def test_grant_credits_command_negative_adjustment_and_its_refusal(alice):
    call_command(
        "grant_credits", alice.email, "-10", kind="adjustment", reason="correction"
    )
    assert balance_get(account=alice.account).bonus_nanos == 40_000_000_000
    with pytest.raises(CommandError, match="insufficient credits"):
        call_command(
            "grant_credits", alice.email, "-41", kind="adjustment", reason="too much"
        )
    with pytest.raises(CommandError, match="no account"):
        call_command(
            "grant_credits", "nobody@example.com", "1", kind="gift", reason="x"
        )
    with pytest.raises(CommandError, match="more than 9 decimal places"):
        call_command(
            "grant_credits", alice.email, "0.0000000001", kind="gift", reason="x"
        )
    with pytest.raises(CommandError, match="amount: '1e3' is not a decimal amount"):
        call_command("grant_credits", alice.email, "1e3", kind="gift", reason="x")
    with pytest.raises(CommandError, match="reason: Contains U\\+202E"):
        call_command("grant_credits", alice.email, "1", kind="gift", reason="a\u202eb")
    assert balance_get(account=alice.account).bonus_nanos == 40_000_000_000


def test_reconciliation_records_drift_where_operators_see_it(alice, client, ops):
    run = ReconciliationRun.objects.create()  # an earlier, clean run
    from billing.ledger.reconciliation import ledger_reconcile

    clean = ledger_reconcile()
    # alice's account, and the operator's own (every user has one).
    assert clean.drift_count == 0 and clean.accounts_checked == 2
    # Simulate corruption behind the services' back.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE billing_wallet SET bonus_nanos = bonus_nanos + 1 "
            "WHERE account_id = %s",
            [alice.account.pk],
        )
    drifted = ledger_reconcile()
    checks = {drift["check"] for drift in drifted.drifts}
    assert {"wallet_matches_journal", "wallet_matches_lots"} <= checks
    assert all(drift["account_id"] == alice.account.pk for drift in drifted.drifts)
    client.force_login(ops)
    page = client.get(f"/admin/billing/reconciliationrun/{drifted.pk}/change/")
    assert b"wallet_matches_journal" in page.content
    assert run.pk != drifted.pk


@pytest.fixture
def celery_worker_app(transactional_db, settings):
    """A real Celery worker thread on an in-memory broker."""
    from celery.contrib.testing.worker import start_worker

    from agipower.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = False
    saved = {
        key: app.conf[key]
        for key in ("broker_url", "task_always_eager", "broker_transport_options")
    }
    app.conf.update(
        broker_url="memory://",
        task_always_eager=False,
        broker_transport_options={},
    )
    _forget_connections(app)  # made to the configured broker
    with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING"):
        yield app
    app.conf.update(saved)
    _forget_connections(app)


def _forget_connections(app) -> None:
    """Celery keeps its broker connections and producers in pools made on first
    use, in kombu's registry of pools shared by the process; after the broker
    changes they must be made anew. The pools are closed and taken out of the
    registry (kombu.pools.reset), so that no later task finds a closed one."""
    from kombu import pools

    pools.reset()
    app._pool = None
    if "amqp" in app.__dict__:
        app.amqp._producer_pool = None


def test_periodic_tasks_run_in_a_real_worker(celery_worker_app, django_user_model):
    from accounts.services import user_signup
    from billing import tasks

    account = user_signup(email="carol@example.com", password="x" * 12).account
    grant(
        account,
        "5",
        reason="expiring soon",
        expires_at=timezone.now() + timedelta(seconds=1),
    )
    stale = hold_place(
        account=account, amount_nanos=usd_to_nanos("1"), ttl=timedelta(seconds=-1)
    )
    tasks.holds_sweep_stale.delay()
    assert _eventually(lambda: Hold.objects.get(pk=stale.id).state == HoldState.EXPIRED)

    lot = CreditLot.objects.get(account=account)
    CreditLot.objects.filter(pk=lot.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    tasks.lots_expire_due.delay()
    assert _eventually(lambda: balance_get(account=account).total_nanos == 0)
    assert LedgerEntry.objects.get(
        account=account, kind=EntryKind.EXPIRY
    ).amount_nanos == (-usd_to_nanos("5"))
    tasks.ledger_reconcile.delay()
    assert _eventually(lambda: ReconciliationRun.objects.filter(drift_count=0).exists())


def _eventually(condition, timeout: float = 20.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_beat_schedules_the_ledger_tasks(settings):
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled == {
        "billing.tasks.lots_expire_due",
        "billing.tasks.holds_sweep_stale",
        "billing.tasks.ledger_reconcile",
        "billing.tasks.autotopup_sweep",
        "billing.tasks.payments_reconcile",
        "alerts.tasks.alerts_scan",
        "proxy.tasks.requestlog_partitions_ensure",
        "proxy.tasks.requestlog_retain",
        "proxy.tasks.rollups_reconcile",
        "proxy.tasks.request_bodies_expire",
        "proxy.tasks.usage_fold",
        "billing.tasks.self_refunds_resolve",
        "gifts.tasks.gift_cards_email_unsent",
        "insurance.tasks.insurance_pay_yesterday",
        "referrals.tasks.referral_rewards_sweep",
    }
