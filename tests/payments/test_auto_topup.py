"""Auto top-up: one charge per crossing of the threshold, never two at once,
and a declined card pauses it and tells the customer."""

from __future__ import annotations

import threading
import uuid

import openai
import pytest
from django.core import mail
from django.db import connection
from rest_framework.test import APIClient

from apikeys.services import key_create
from billing.ledger.debits import balance_debit
from billing.ledger.reconciliation import ledger_check
from billing.ledger.selectors import balance_get
from billing.models import AutoTopUp, EntryKind, LedgerEntry, TopUp, TopUpStatus
from billing.payments.localstripe import PUBLISHABLE_KEY, SECRET_KEY, WEBHOOK_SECRET
from billing.payments.services import (
    autotopup_configure,
    autotopup_run,
    autotopup_sweep,
)
from money import usd_to_nanos
from tests.support.payments import CHARGE_FAILS, with_profile
from tests.support.platform import PlatformProcess, database_url
from tests.support.world import grant

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


def test_usage_below_the_threshold_through_the_proxy_charges_exactly_once(
    bob, card_save, stripe_settings, localstripe, catalog, upstream
):
    card = card_save(bob.account)
    configured(bob, card)
    grant(bob, "10.02")
    key = key_create(account=bob.account, name="app")
    settings_dict = connection.settings_dict

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


# --- one charge per crossing, a threshold below the amount, a cap per 24 h ---------


def stripe_charges(account) -> list[int]:
    """The amounts (cents) localstripe charged this account's customer."""
    import stripe
    from djstripe.models import Customer

    customer = Customer.objects.get(subscriber=account)
    listed = stripe.PaymentIntent.list(api_key=SECRET_KEY, limit=100)
    return [
        intent.amount
        for intent in listed.auto_paging_iter()
        if intent.customer == customer.id and intent.status == "succeeded"
    ]


def spend_to(account, usd: str):
    """Spend until the balance is ``usd``."""
    left = balance_get(account=account).total_nanos - usd_to_nanos(usd)
    balance_debit(account=account, amount_nanos=left, idempotency_key=uuid.uuid4().hex)


def put_auto_top_up(user, **body):
    api = APIClient()
    api.force_login(user)
    return api.put("/api/v1/auto-top-up", body, format="json")


def test_a_threshold_at_or_above_the_amount_is_refused_by_the_api(
    bob, card_save, stripe_settings
):
    with_profile(bob)
    card = card_save(bob.account)
    for threshold, amount in [("100000", "5"), ("100", "100"), ("100.01", "100")]:
        response = put_auto_top_up(
            bob,
            enabled=True,
            threshold=threshold,
            amount=amount,
            payment_method=card.id,
        )
        assert response.status_code == 400, response.content
        error = response.json()["error"]
        assert error["message"].startswith("threshold: must be below"), error
    assert not AutoTopUp.objects.filter(enabled=True).exists()
    # Turning auto top-up off always works, whatever the numbers.
    off = put_auto_top_up(bob, enabled=False, threshold="100000", amount="5")
    assert off.status_code == 200, off.content
    ok = put_auto_top_up(
        bob, enabled=True, threshold="99.99", amount="100", payment_method=card.id
    )
    assert ok.status_code == 200, ok.content


def test_an_amount_above_the_daily_cap_is_refused(bob, card_save, stripe_settings):
    with_profile(bob)
    card = card_save(bob.account)
    response = put_auto_top_up(
        bob, enabled=True, threshold="10", amount="5000.01", payment_method=card.id
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"]["message"].startswith("amount: ")
    assert "$5,000.00" in response.json()["error"]["message"]


def test_the_reported_reproduction_charges_once_while_the_balance_stays_below(
    bob, card_save, stripe_settings, localstripe, catalog, upstream
):
    """The reported settings (threshold $100,000, amount $5), as a database
    made before they were refused still holds them: light /v1 traffic, the
    sweep and direct triggers, again and again, make exactly one charge."""
    card = card_save(bob.account)
    configured(bob, card)
    AutoTopUp.objects.filter(account=bob.account).update(
        threshold_nanos=usd_to_nanos("100000"), amount_nanos=usd_to_nanos("5")
    )
    grant(bob, "1")
    key = key_create(account=bob.account, name="app")

    with PlatformProcess(
        database_url=database_url(connection.settings_dict),
        env={
            "FAKE_UPSTREAM_KEY": "sk-upstream-test",
            "STRIPE_SECRET_KEY": SECRET_KEY,
            "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STRIPE_API_BASE": localstripe.api_base,
            "CELERY_TASK_ALWAYS_EAGER": "true",
        },
    ) as platform:
        client = openai.OpenAI(
            base_url=platform.base_url, api_key=key.secret, max_retries=0
        )
        import time

        deadline = time.monotonic() + 20
        for round_ in range(12):
            client.chat.completions.create(
                model="fake/gpt",
                messages=[
                    {
                        "role": "user",
                        "content": "#upstream prompt_tokens=10 completion_tokens=100",
                    }
                ],
                max_tokens=200,
            )
            assert autotopup_run(account_id=bob.account.pk) is None or round_ == 0
            autotopup_sweep()
            if round_ == 0:
                while not TopUp.objects.filter(status=TopUpStatus.SUCCEEDED).exists():
                    assert time.monotonic() < deadline, platform.output()
                    time.sleep(0.1)
            time.sleep(0.5)  # past the proxy's pause between asks, sometimes
    assert len(stripe_charges(bob.account)) == 1
    assert TopUp.objects.count() == 1
    row = AutoTopUp.objects.get()
    assert row.armed is False and row.paused_at is None
    assert balance_get(account=bob.account).total_nanos < usd_to_nanos("100000")
    assert ledger_check() == []


def test_auto_top_up_is_armed_again_once_the_balance_is_back_above(
    bob, card_save, stripe_settings
):
    card = card_save(bob.account)
    configured(bob, card)
    grant(bob, "5")
    first = autotopup_run(account_id=bob.account.pk)
    assert first.status == TopUpStatus.SUCCEEDED
    # The credit itself lifted the balance above the threshold: armed again.
    assert balance_get(account=bob.account).total_nanos == usd_to_nanos("125")
    assert AutoTopUp.objects.get().armed is True
    spend_to(bob.account, "9")
    assert autotopup_run(account_id=bob.account.pk).status == TopUpStatus.SUCCEEDED
    assert len(stripe_charges(bob.account)) == 2

    # Below the threshold and not armed (a crossing already charged): nothing,
    # however often asked, until the balance is seen at or above it again.
    spend_to(bob.account, "3")
    AutoTopUp.objects.update(armed=False)
    for _ in range(3):
        assert autotopup_run(account_id=bob.account.pk) is None
        assert autotopup_sweep() == 0
    grant(bob, "7")  # $10: at the threshold
    assert autotopup_sweep() == 0  # re-arms, charges nothing
    assert AutoTopUp.objects.get().armed is True
    spend_to(bob.account, "9.99")
    assert autotopup_sweep() == 1
    assert len(stripe_charges(bob.account)) == 3
    assert TopUp.objects.filter(status=TopUpStatus.SUCCEEDED).count() == 3
    assert ledger_check() == []


def test_the_sixth_crossing_in_a_day_pauses_and_tells_the_customer(
    bob, card_save, stripe_settings
):
    card = card_save(bob.account)
    configured(bob, card)
    grant(bob, "5")
    for _ in range(5):
        assert autotopup_run(account_id=bob.account.pk).status == (
            TopUpStatus.SUCCEEDED
        )
        spend_to(bob.account, "5")
    assert mail.outbox == []
    assert autotopup_run(account_id=bob.account.pk) is None
    row = AutoTopUp.objects.get()
    assert row.paused_at is not None
    assert "5 automatic charges or $5,000.00 in 24 hours" in row.paused_reason
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [bob.email]
    assert "limit" in mail.outbox[0].body
    for _ in range(3):
        assert autotopup_run(account_id=bob.account.pk) is None
        assert autotopup_sweep() == 0
    assert len(stripe_charges(bob.account)) == 5
    assert len(mail.outbox) == 1

    # A day later the window has room again; saving the settings resumes.
    from datetime import timedelta

    from django.utils import timezone

    TopUp.objects.update(created_at=timezone.now() - timedelta(hours=25))
    configured(bob, card)
    assert autotopup_run(account_id=bob.account.pk).status == TopUpStatus.SUCCEEDED
    assert len(stripe_charges(bob.account)) == 6


def test_an_operator_sets_an_accounts_cap_in_admin(
    bob, ops, card_save, stripe_settings, client
):
    card = card_save(bob.account)
    configured(bob, card)  # $100 each time
    client.force_login(ops)
    url = f"/admin/billing/autotopup/{bob.account.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert b"5 automatic charges or $5,000.00 in 24 hours" in page.content
    refused = client.post(url, {"max_charges_per_day": "", "max_usd_per_day": "lots"})
    assert refused.status_code == 200  # the form again, with the error
    assert AutoTopUp.objects.get().max_nanos_per_day is None
    saved = client.post(url, {"max_charges_per_day": "", "max_usd_per_day": "250"})
    assert saved.status_code == 302, saved.content
    row = AutoTopUp.objects.get()
    assert row.max_nanos_per_day == usd_to_nanos("250")
    assert row.max_charges_per_day is None
    assert row.threshold_nanos == usd_to_nanos("10")  # untouched

    grant(bob, "5")
    for _ in range(2):  # $200 of the $250
        assert autotopup_run(account_id=bob.account.pk).status == (
            TopUpStatus.SUCCEEDED
        )
        spend_to(bob.account, "5")
    assert autotopup_run(account_id=bob.account.pk) is None  # $300 > $250
    row.refresh_from_db()
    assert "$250.00 in 24 hours" in row.paused_reason
    assert len(mail.outbox) == 1
    assert len(stripe_charges(bob.account)) == 2
