"""Auto top-up pauses: a dispute's pause outlives the customer's saving of the
settings (only an operator lifts it), and a declined automatic charge pauses
and emails once, though its payment_failed webhook arrives afterwards."""

from __future__ import annotations

import json
import time

import pytest
import stripe
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient

from billing.models import AutoTopUp, TopUp, TopUpStatus
from billing.payments.localstripe import WEBHOOK_SECRET
from billing.payments.services import (
    autotopup_configure,
    autotopup_run,
    autotopup_unpause,
)
from money import usd_to_nanos
from tests.support.payments import CHARGE_FAILS, with_profile
from tests.support.world import grant

pytestmark = pytest.mark.django_db(transaction=True)


def signed_post(payload: dict):
    body = json.dumps(payload)
    timestamp = int(time.time())
    signature = stripe.WebhookSignature._compute_signature(
        f"{timestamp}.{body}", WEBHOOK_SECRET
    )
    return Client().post(
        "/stripe/webhook/",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=f"t={timestamp},v1={signature}",
    )


def event(event_id: str, kind: str, obj: dict) -> dict:
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2020-08-27",
        "created": int(time.time()),
        "livemode": False,
        "type": kind,
        "data": {"object": obj},
    }


def configured(user, card):
    with_profile(user)
    return autotopup_configure(
        account=user.account,
        enabled=True,
        threshold_nanos=usd_to_nanos("10"),
        amount_nanos=usd_to_nanos("100"),
        payment_method_id=card.id,
    )


def put_settings(user, card):
    api = APIClient()
    api.force_login(user)
    return api.put(
        "/api/v1/auto-top-up",
        {
            "enabled": True,
            "threshold": "10",
            "amount": "100",
            "payment_method": card.id,
        },
        format="json",
    )


def test_a_dispute_pause_survives_the_customer_saving_the_settings(
    bob, ops, card_save, stripe_settings
):
    card = card_save(bob.account)
    configured(bob, card)
    grant(bob, "5")
    topup = autotopup_run(account_id=bob.account.pk)
    assert topup.status == TopUpStatus.SUCCEEDED
    mail.outbox.clear()
    dispute = {
        "id": "dp_pause_1",
        "object": "dispute",
        "amount": 10000,
        "currency": "usd",
        "payment_intent": topup.payment_intent_id,
        "status": "needs_response",
    }
    opened = event("evt_dp_pause_1", "charge.dispute.created", dispute)
    assert signed_post(opened).status_code == 200
    row = AutoTopUp.objects.get()
    assert row.paused_at is not None and row.paused_by_operator_only
    assert len(mail.outbox) == 1 and "our team" in mail.outbox[0].body

    # The customer saves the settings again: they are saved (200), but auto
    # top-up stays paused and the answer says why.
    response = put_settings(bob, card)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["paused_at"] is not None
    assert body["paused_by_operator_only"] is True
    assert body["paused_reason"].startswith("a payment was disputed")
    assert "our team" in body["paused_reason"]
    assert autotopup_run(account_id=bob.account.pk) is None
    assert TopUp.objects.count() == 1
    console = Client()
    console.force_login(bob)
    page = console.get("/console/billing").content.decode()
    assert "a payment was disputed" in page.lower()

    # A later decline-type pause does not replace it either.
    from billing.payments.autotopup import autotopup_pause

    autotopup_pause(account_id=bob.account.pk, reason="the card was declined")
    assert AutoTopUp.objects.get().paused_by_operator_only

    # An operator lifts it; then saving the settings works as before.
    autotopup_unpause(account=bob.account, actor=ops)
    row = AutoTopUp.objects.get()
    assert row.paused_at is None and not row.paused_by_operator_only
    assert put_settings(bob, card).json()["paused_at"] is None


def test_a_decline_then_its_webhook_emails_once_and_does_not_pause_again(
    bob, card_save, stripe_settings
):
    card = card_save(bob.account, CHARGE_FAILS)
    configured(bob, card)
    grant(bob, "5")
    topup = autotopup_run(account_id=bob.account.pk)
    assert topup.status == TopUpStatus.FAILED
    assert AutoTopUp.objects.get().paused_at is not None
    assert len(mail.outbox) == 1

    # The customer saves the settings again (a new card) before the webhook.
    good = card_save(bob.account)
    response = put_settings(bob, good)
    assert response.status_code == 200, response.content
    assert response.json()["paused_at"] is None

    failed = event(
        "evt_pi_failed_1",
        "payment_intent.payment_failed",
        {
            "id": topup.payment_intent_id,
            "object": "payment_intent",
            "amount": 10000,
            "currency": "usd",
            "status": "requires_payment_method",
            "metadata": {"topup": str(topup.pk), "auto": "1"},
            "last_payment_error": {"code": "card_declined", "message": "declined"},
        },
    )
    assert signed_post(failed).status_code == 200
    assert signed_post(failed | {"id": "evt_pi_failed_2"}).status_code == 200
    assert len(mail.outbox) == 1
    row = AutoTopUp.objects.get()
    assert row.paused_at is None and row.paused_reason == ""
    assert TopUp.objects.get(pk=topup.pk).status == TopUpStatus.FAILED
