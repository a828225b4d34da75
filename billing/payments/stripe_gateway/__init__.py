"""Stripe: the only package that talks to it (webhooks arrive in
``billing.payments.webhooks``). Callers use this package's names
(``from billing.payments import stripe_gateway as gateway``), not its modules:

- ``client``: the keys, errors fit for customers, plain values, the mirror;
- ``customers``: the account's customer and its saved cards;
- ``charges``: PaymentIntents and refunds.

Every function reads the keys from settings when it is called, so unset keys
mean "payments are not configured" (``PaymentsNotConfigured``), never a crash at
import. Answers are small dataclasses with amounts in integer cents, not Stripe
objects. What Stripe returns is mirrored into dj-stripe's tables (customers,
cards, payment intents): a convenience for operators; Stripe stays the source of
truth, so a mirror that fails is logged and does not fail the payment.

Written to work both against Stripe and against localstripe, the emulator the
tests use. Where the two differ, the code says so.
"""

from billing.payments.stripe_gateway.charges import (
    PaymentIntentInfo,
    RefundInfo,
    payment_intent_create,
    payment_intent_retrieve,
    refund_create,
    refund_retrieve,
    refunds_list,
)
from billing.payments.stripe_gateway.client import (
    CURRENCY,
    METHODS,
    api_key_get,
    stripe_configured,
)
from billing.payments.stripe_gateway.customers import (
    Card,
    SetupIntentInfo,
    card_attach,
    card_detach,
    card_fingerprint,
    card_fingerprints,
    card_get,
    card_set_default,
    cards_list,
    customer_id_for,
    setup_intent_create,
)

__all__ = [
    "CURRENCY",
    "METHODS",
    "Card",
    "PaymentIntentInfo",
    "RefundInfo",
    "SetupIntentInfo",
    "api_key_get",
    "card_attach",
    "card_detach",
    "card_fingerprint",
    "card_fingerprints",
    "card_get",
    "card_set_default",
    "cards_list",
    "customer_id_for",
    "payment_intent_create",
    "payment_intent_retrieve",
    "refund_create",
    "refund_retrieve",
    "refunds_list",
    "setup_intent_create",
    "stripe_configured",
]
