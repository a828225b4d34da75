"""Stripe fixtures, for any test folder.

Use them from another folder's conftest.py::

    from tests.stripe.fixtures import *  # noqa: F403  (the Stripe fixtures)

- ``localstripe`` (session): one localstripe server per test process, shared by
  every folder that imports it; ``.api_base``, ``.js_url``, ``.flush()``...
- ``stripe_settings``: Stripe keys shaped like real test keys, and
  ``STRIPE_API_BASE`` and ``STRIPE_JS_URL`` pointed at localstripe, for one
  test.
- ``stripe_webhooks`` (needs ``live_server``, hence a transactional database):
  localstripe posts its events to ``live_server.url + "/stripe/webhook/"``
  signed with the test secret; afterwards the endpoint is forgotten, posts in
  flight are waited for and localstripe's data is flushed. Its ``wait_for``
  polls for what a webhook should have done.
"""

from __future__ import annotations

import atexit
import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import stripe

from billing.payments.localstripe import (
    PUBLISHABLE_KEY,
    SECRET_KEY,
    WEBHOOK_PATH,
    WEBHOOK_SECRET,
    LocalStripe,
)

__all__ = ["card_save", "localstripe", "stripe_settings", "stripe_webhooks"]

_server: LocalStripe | None = None


def localstripe_server() -> LocalStripe:
    """The process's localstripe, started on first use, stopped at exit."""
    global _server
    if _server is None:
        _server = LocalStripe().start()
        atexit.register(_server.stop)
    return _server


@pytest.fixture(scope="session")
def localstripe() -> LocalStripe:
    return localstripe_server()


@pytest.fixture
def stripe_settings(settings, localstripe):
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_PUBLISHABLE_KEY = PUBLISHABLE_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = localstripe.api_base
    settings.STRIPE_JS_URL = localstripe.js_url
    settings.STRIPE_LIVE_MODE = False
    api_base = stripe.api_base
    # For the tests' own calls too (the gateway sets it on every call).
    stripe.api_base = localstripe.api_base
    yield settings
    # The gateway sets it on every call; leave no localstripe address behind.
    stripe.api_base = api_base


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


@pytest.fixture
def stripe_webhooks(live_server, stripe_settings, localstripe):
    url = live_server.url + WEBHOOK_PATH
    webhook_id = localstripe.register_webhook(url, WEBHOOK_SECRET)
    yield StripeWebhooks(url=url, secret=WEBHOOK_SECRET, localstripe=localstripe)
    localstripe.unregister_webhook(webhook_id)
    # Before the test database is emptied: no post may still be writing.
    localstripe.deliveries_wait()
    localstripe.flush()


VISA = "4242424242424242"
VISA_DEBIT = "4000056655665556"
THREE_D_SECURE = "4000002500003155"
CHARGE_FAILS = "4000000000000341"


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


@pytest.fixture
def card_save(localstripe, stripe_settings):
    """Save a card on an account the way the console does: a SetupIntent,
    confirmed by Stripe.js, then the card list."""
    from billing.payments import stripe_gateway as gateway

    def save(account, number: str = VISA):
        intent = gateway.setup_intent_create(account=account)
        confirmed = browser_card_confirm(localstripe, intent, number)
        cards = {card.id: card for card in gateway.cards_list(account=account)}
        return cards[confirmed["payment_method"]]

    return save
