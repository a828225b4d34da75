"""Auto top-up: one charge per crossing of the threshold, never two at once,
and a declined card pauses it and tells the customer."""

from __future__ import annotations

import threading

import openai
import pytest
from django.core import mail
from django.db import connection
from rest_framework.test import APIClient

from apikeys.services import key_create
from billing.models import AutoTopUp, EntryKind, LedgerEntry, TopUp, TopUpStatus
from billing.money import usd_to_nanos
from billing.payments import autotopup_configure, autotopup_run, autotopup_sweep
from billing.reconciliation import ledger_check
from billing.selectors import balance_get
from billing.services import balance_debit, credit_grant
from tests.payments.test_topups import with_profile
from tests.proxy.platform import PlatformProcess
from tests.stripe.fixtures import (
    CHARGE_FAILS,
    PUBLISHABLE_KEY,
    SECRET_KEY,
    WEBHOOK_SECRET,
)

pytestmark = pytest.mark.django_db(transaction=True)


def configured(user, card, *, threshold="10", amount="100"):
    with_profile(user)
    return autotopup_configure(
        account=user.account,
        enabled=True,
        threshold_nanos=usd_to_nanos(threshold),
        amount_nanos=usd_to_nanos(amount),
        payment_method_id=card.id,
    )


def grant(user, usd: str):
    credit_grant(
        account=user.account,
        source="gift",
        amount_nanos=usd_to_nanos(usd),
        reason="start",
        actor=None,
        idempotency_key=f"start-{usd}",
    )


def test_usage_below_the_threshold_through_the_proxy_charges_exactly_once(
    bob, card_save, stripe_settings, localstripe, catalog, upstream
):
    card = card_save(bob.account)
    configured(bob, card)
    grant(bob, "10.02")
    key = key_create(account=bob.account, name="app")
    settings_dict = connection.settings_dict
    from tests.proxy.platform import database_url

    with PlatformProcess(
        database_url=database_url(settings_dict),
        env={
            "FAKE_UPSTREAM_KEY": "sk-upstream-test",
            "STRIPE_SECRET_KEY": SECRET_KEY,
            "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STRIPE_API_BASE": localstripe.api_base,
            # The settle path asks Celery; here the task runs in the worker.
            "CELERY_TASK_ALWAYS_EAGER": "true",
        },
    ) as platform:
        client = openai.OpenAI(
            base_url=platform.base_url, api_key=key.secret, max_retries=0
        )

        def ask(completion_tokens: int):
            client.chat.completions.create(
                model="fake/gpt",
                messages=[
                    {
                        "role": "user",
                        "content": f"#upstream prompt_tokens=10 "
                        f"completion_tokens={completion_tokens}",
                    }
                ],
                max_tokens=3000,
            )

        ask(1000)  # $0.01: still above $10
        assert not TopUp.objects.exists()
        ask(2000)  # $0.02: below $10 now
        import time

        deadline = time.monotonic() + 10
        while not TopUp.objects.filter(status=TopUpStatus.SUCCEEDED).exists():
            assert time.monotonic() < deadline, platform.output()
            time.sleep(0.1)
        for _ in range(5):  # well above the threshold again: no more charges
            ask(100)
    topups = TopUp.objects.all()
    assert [(t.automatic, t.amount_nanos, t.status) for t in topups] == [
        (True, usd_to_nanos("100"), TopUpStatus.SUCCEEDED)
    ]
    credited = LedgerEntry.objects.filter(
        account=bob.account, kind__in=[EntryKind.TOPUP, EntryKind.BONUS]
    )
    assert sorted(credited.values_list("amount_nanos", flat=True)) == [
        usd_to_nanos("20"),
        usd_to_nanos("100"),
    ]
    assert AutoTopUp.objects.get().in_flight is None
    assert ledger_check() == []


def test_two_concurrent_triggers_charge_once(bob, card_save, stripe_settings):
    card = card_save(bob.account)
    configured(bob, card)
    grant(bob, "5")
    started = []

    def trigger():
        try:
            started.append(autotopup_run(account_id=bob.account.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=trigger) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len([t for t in started if t is not None]) == 1
    assert TopUp.objects.count() == 1
    assert balance_get(account=bob.account).total_nanos == usd_to_nanos("125")
    # A later sweep finds the account above its threshold: nothing to do.
    assert autotopup_sweep() == 0
    assert TopUp.objects.count() == 1


def test_a_declined_card_pauses_auto_top_up_and_tells_the_customer(
    bob, card_save, stripe_settings
):
    card = card_save(bob.account, CHARGE_FAILS)
    configured(bob, card)
    grant(bob, "5")
    topup = autotopup_run(account_id=bob.account.pk)
    assert topup.status == TopUpStatus.FAILED
    row = AutoTopUp.objects.get()
    assert row.paused_at is not None and "declined" in row.paused_reason
    assert row.in_flight is None
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [bob.email]
    assert "paused" in mail.outbox[0].subject
    # No retry storm: neither the settle path nor the sweep tries again.
    for _ in range(3):
        assert autotopup_run(account_id=bob.account.pk) is None
    assert autotopup_sweep() == 0
    assert TopUp.objects.count() == 1
    assert balance_get(account=bob.account).total_nanos == usd_to_nanos("5")
    # Saving the settings again (a new card) is the customer's word to retry.
    api = APIClient()
    api.force_login(bob)
    good = card_save(bob.account)
    response = api.put(
        "/api/v1/auto-top-up",
        {
            "enabled": True,
            "threshold": "10",
            "amount": "100",
            "payment_method": good.id,
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["paused_reason"] == ""
    assert autotopup_run(account_id=bob.account.pk).status == TopUpStatus.SUCCEEDED


def test_auto_top_up_settings_refuse_bad_input(bob, card_save, stripe_settings):
    api = APIClient()
    api.force_login(bob)
    with_profile(bob)
    card = card_save(bob.account)
    for body, field in [
        ({"enabled": True, "threshold": "10", "amount": "4"}, "amount"),
        ({"enabled": True, "threshold": "-1", "amount": "100"}, "threshold"),
        ({"enabled": True, "threshold": "10", "amount": "100"}, "payment_method"),
        (
            {
                "enabled": True,
                "threshold": "10",
                "amount": "100",
                "payment_method": "pm_someone_else",
            },
            "payment",
        ),
        ({"enabled": True, "threshold": 10.5, "amount": "100"}, "threshold"),
    ]:
        response = api.put("/api/v1/auto-top-up", body, format="json")
        assert response.status_code in (400, 404), body
        assert field in response.content.decode(), response.content
    assert api.get("/api/v1/auto-top-up").json()["enabled"] is False
    ok = api.put(
        "/api/v1/auto-top-up",
        {
            "enabled": True,
            "threshold": "10",
            "amount": "100",
            "payment_method": card.id,
        },
        format="json",
    )
    assert ok.json()["threshold"] == "10.000000000"


def test_a_debit_that_is_not_through_the_proxy_is_caught_by_the_sweep(
    bob, card_save, stripe_settings
):
    card = card_save(bob.account)
    configured(bob, card)
    grant(bob, "15")
    balance_debit(
        account=bob.account, amount_nanos=usd_to_nanos("6"), idempotency_key="d"
    )
    assert autotopup_sweep() == 1
    assert balance_get(account=bob.account).total_nanos == usd_to_nanos("129")


def test_an_attempt_left_in_flight_by_a_dead_worker_is_finished_by_the_sweep(
    bob, card_save, stripe_settings
):
    from datetime import timedelta

    from django.utils import timezone

    card = card_save(bob.account)
    row = configured(bob, card)
    grant(bob, "5")
    # A worker claimed the attempt, then died before it reached Stripe.
    stuck = TopUp.objects.create(
        account=bob.account,
        amount_nanos=usd_to_nanos("100"),
        method="card",
        payment_method_id=card.id,
        automatic=True,
        created_at=timezone.now() - timedelta(minutes=11),
    )
    AutoTopUp.objects.filter(pk=row.pk).update(in_flight=stuck)
    assert autotopup_run(account_id=bob.account.pk) is None  # still claimed

    autotopup_sweep()
    stuck.refresh_from_db()
    assert stuck.status == TopUpStatus.FAILED
    row.refresh_from_db()
    assert row.in_flight is None
    assert row.paused_at is not None  # the customer is told and decides
    assert len(mail.outbox) == 1
    assert balance_get(account=bob.account).total_nanos == usd_to_nanos("5")
