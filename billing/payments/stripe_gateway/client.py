"""The gateway's connection to Stripe: its keys read from settings on every
call, Stripe's failures turned into errors fit for customers, Stripe objects
read as plain values, and the mirror of what Stripe returns in dj-stripe's
tables."""

from __future__ import annotations

import logging
import re
from typing import Any

import stripe
from django.conf import settings
from django.db import transaction

from billing.errors import PaymentFailed, PaymentsNotConfigured, UnknownPaymentMethod

logger = logging.getLogger("billing.payments.stripe_gateway")

CURRENCY = "usd"
METHODS = ("card", "alipay")
# Stripe ids are letters, digits and underscores; anything else is not an id.
_STRIPE_ID = re.compile(r"[A-Za-z0-9_]{3,255}")
_GENERIC_FAILURE = "The payment service did not answer as expected. Please try again."


def stripe_configured() -> bool:
    """All three are needed: without the webhook secret a payment could be
    taken and never credited."""
    return bool(
        settings.STRIPE_SECRET_KEY
        and settings.STRIPE_PUBLISHABLE_KEY
        and settings.STRIPE_WEBHOOK_SECRET
    )


def _api_key() -> str:
    """The secret key, after pointing the Stripe library at the configured API.

    ``stripe.api_base`` is global because dj-stripe's calls read it there; it
    is set from settings on every call, so it always matches them.
    """
    if not stripe_configured():
        raise PaymentsNotConfigured("Payments are not configured on this server.")
    stripe.api_base = settings.STRIPE_API_BASE.rstrip("/")
    return settings.STRIPE_SECRET_KEY


def api_key_get() -> str:
    """The secret key, for dj-stripe calls made elsewhere (the webhook)."""
    return _api_key()


def _livemode(api_key: str) -> bool:
    return api_key.startswith("sk_live_")


def _failure_log(exc: stripe.StripeError, doing: str) -> None:
    # What identifies the failure, never the request's parameters or keys.
    logger.warning(
        "stripe: %s failed: %s http=%s code=%s request=%s",
        doing,
        type(exc).__name__,
        exc.http_status,
        exc.code,
        exc.request_id,
    )


def _failure(exc: stripe.StripeError, doing: str, error=PaymentFailed):
    """A customer-safe error for a Stripe failure, logged."""
    _failure_log(exc, doing)
    if isinstance(exc, stripe.CardError) and exc.user_message:
        return error(exc.user_message)  # Stripe writes these for customers
    return error(_GENERIC_FAILURE)


def _checked_id(value: str | None, prefixes: tuple[str, ...]) -> str:
    if (
        not isinstance(value, str)
        or not _STRIPE_ID.fullmatch(value)
        or not value.startswith(prefixes)
    ):
        raise UnknownPaymentMethod("No such saved card.")
    return value


def _plain(obj: Any) -> dict:
    """A Stripe object as plain dicts and lists (``{}`` for None)."""
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    return obj.to_dict()


def _get(obj: Any, key: str) -> Any:
    """``obj.get(key)`` for a Stripe object or a dict (stripe 15's objects are
    not dicts)."""
    if obj is None:
        return None
    try:
        return obj[key]
    except KeyError:
        return None


def _id_of(value: Any) -> str | None:
    """The id of a field that is either an id or an expanded object."""
    if not value:
        return None
    if isinstance(value, str):
        return value
    return _plain(value).get("id")


def _mirror(model, data, *, api_key: str):
    """Copy a Stripe object into dj-stripe's table; a failure is only logged."""
    try:
        with transaction.atomic():
            return model.sync_from_stripe_data(data, api_key=api_key)
    except Exception:
        logger.exception("stripe: could not mirror %s %s", model.__name__, data["id"])
        return None
