"""The referral program in tests: a friend signing up through the signup page
with a code, a referee's top-up paid with a saved card through the API (the
path the console takes), and Stripe's events posted signed to the webhook."""

from __future__ import annotations

import json
import time

import stripe
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from billing.models import TopUp
from billing.payments.localstripe import WEBHOOK_SECRET
from referrals.models import ReferralCode
from tests.support.world import PASSWORD


def code_of(user: User) -> str:
    return ReferralCode.objects.get(account=user.account).code


def signup_with(ref: str | None, email: str, client: Client | None = None) -> User:
    """Sign ``email`` up through the signup page, opened from a referral link
    (``/signup?ref=...``) whose hidden field the form posts back."""
    client = client or Client()
    page = client.get("/signup", {"ref": ref} if ref is not None else {})
    assert page.status_code == 200
    carried = page.context["form"]["ref"].value() or ""
    response = client.post(
        "/signup",
        {
            "email": email,
            "full_name": "A Friend",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "ref": carried,
        },
    )
    assert response.status_code == 302, response.content
    return User.objects.get(email=email.lower())


def top_up(user: User, amount: str, card) -> TopUp:
    """POST /api/v1/top-ups with a saved card; the server confirms it at once."""
    client = APIClient()
    client.force_login(user)
    response = client.post(
        "/api/v1/top-ups", {"amount": amount, "payment_method": card.id}, format="json"
    )
    assert response.status_code == 201, response.content
    return TopUp.objects.get(pk=response.json()["id"])


def webhook_post(event_type: str, event_id: str, obj: dict) -> int:
    """Post a Stripe event, signed as Stripe signs it, to the webhook."""
    body = json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2020-08-27",
            "created": int(time.time()),
            "livemode": False,
            "type": event_type,
            "data": {"object": obj},
        }
    )
    timestamp = int(time.time())
    signature = stripe.WebhookSignature._compute_signature(
        f"{timestamp}.{body}", WEBHOOK_SECRET
    )
    response = Client().post(
        "/stripe/webhook/",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=f"t={timestamp},v1={signature}",
    )
    return response.status_code


def succeeded_again(topup: TopUp, event_id: str) -> int:
    """Stripe's ``payment_intent.succeeded`` for a top-up, delivered again."""
    return webhook_post(
        "payment_intent.succeeded",
        event_id,
        {
            "id": topup.payment_intent_id,
            "object": "payment_intent",
            "amount": topup.amount_nanos // 10**7,
            "currency": "usd",
            "status": "succeeded",
            "metadata": {"topup": str(topup.pk)},
        },
    )


def dispute_opened(topup: TopUp, dispute_id: str) -> int:
    return webhook_post(
        "charge.dispute.created",
        f"evt_{dispute_id}",
        {
            "id": dispute_id,
            "object": "dispute",
            "amount": topup.amount_nanos // 10**7,
            "currency": "usd",
            "payment_intent": topup.payment_intent_id,
            "status": "needs_response",
        },
    )
