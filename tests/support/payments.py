"""Payments in tests, against localstripe: the process's localstripe server,
Stripe's test cards, what Stripe.js does to confirm a card, webhooks waited
for, and the billing profile a customer needs before paying.

The fixtures that use these (``localstripe``, ``stripe_settings``,
``stripe_webhooks``, ``card_save``) are in tests/conftest.py."""

from __future__ import annotations

import atexit
import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from accounts.services import billing_profile_save
from billing.payments.localstripe import PUBLISHABLE_KEY, LocalStripe

VISA = "4242424242424242"
VISA_DEBIT = "4000056655665556"
THREE_D_SECURE = "4000002500003155"
CHARGE_FAILS = "4000000000000341"

_server: LocalStripe | None = None


def localstripe_server() -> LocalStripe:
    """The process's localstripe, started on first use, stopped at exit."""
    global _server
    if _server is None:
        _server = LocalStripe().start()
        atexit.register(_server.stop)
    return _server


@dataclass
class StripeWebhooks:
    url: str
    secret: str
    localstripe: LocalStripe

    def wait_for(self, predicate: Callable[[], object], timeout: float = 5.0) -> object:
        """Poll until ``predicate()`` is truthy (localstripe sends an event
        about a second after it happens); its last value otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.05)


def browser_card_confirm(localstripe, setup_intent, number: str = VISA) -> dict:
    """What Stripe.js's confirmCardSetup does in the browser: confirm the
    SetupIntent with the publishable key and the typed card (and, for a
    3-D Secure card, confirm it again once the customer has authenticated)."""
    seti = setup_intent.client_secret.split("_secret_")[0]
    url = f"{localstripe.api_base}/v1/setup_intents/{seti}/confirm"

    def post(body: dict) -> dict:
        request = urllib.request.Request(  # noqa: S310
            url, data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read())

    answer = post(
        {
            "key": PUBLISHABLE_KEY,
            "use_stripe_sdk": True,
            "client_secret": setup_intent.client_secret,
            "payment_method_data": {
                "type": "card",
                "card": {
                    "number": number,
                    "exp_month": 12,
                    "exp_year": 2030,
                    "cvc": "123",
                },
            },
        }
    )
    if answer["status"] == "requires_action":
        answer = post(
            {
                "key": PUBLISHABLE_KEY,
                "use_stripe_sdk": True,
                "client_secret": setup_intent.client_secret,
            }
        )
    assert answer["status"] == "succeeded", answer
    return answer


def with_profile(user):
    """The user, with the billing profile that paying needs."""
    billing_profile_save(
        account=user.account,
        name=user.full_name or "Bob Builder",
        country="GB",
        address_line1="1 High Street",
        city="Oxford",
        postal_code="OX1 1AA",
    )
    return user
