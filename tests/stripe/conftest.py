"""Stripe tests run against localstripe (see fixtures.py)."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.stripe.fixtures import *  # noqa: F403  (the Stripe fixtures)
from tests.stripe.fixtures import PUBLISHABLE_KEY

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
    from billing import stripe_gateway as gateway

    def save(account, number: str = VISA):
        intent = gateway.setup_intent_create(account=account)
        confirmed = browser_card_confirm(localstripe, intent, number)
        cards = {card.id: card for card in gateway.cards_list(account=account)}
        return cards[confirmed["payment_method"]]

    return save
