"""Stripe: the only module that talks to it (webhooks arrive in ``webhooks``).

Every function reads the keys from settings when it is called, so unset keys
mean "payments are not configured" (``PaymentsNotConfigured``), never a crash at
import. Answers are small dataclasses with amounts in integer cents, not Stripe
objects. What Stripe returns is mirrored into dj-stripe's tables (customers,
cards, payment intents): a convenience for operators; Stripe stays the source of
truth, so a mirror that fails is logged and does not fail the payment.

Written to work both against Stripe and against localstripe, the emulator the
tests use. Where the two differ, the code says so.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import stripe
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from djstripe import models as djstripe
from djstripe.settings import djstripe_settings

from accounts.models import Account
from billing.errors import (
    PaymentFailed,
    PaymentsNotConfigured,
    RefundFailed,
    UnknownPaymentMethod,
)

logger = logging.getLogger(__name__)

CURRENCY = "usd"
METHODS = ("card", "alipay")
# Stripe ids are letters, digits and underscores; anything else is not an id.
_STRIPE_ID = re.compile(r"[A-Za-z0-9_]{3,255}")
# A SetupIntent not confirmed within this time is not looked at again.
_SETUP_INTENT_WATCH = timedelta(hours=24)
_GENERIC_FAILURE = "The payment service did not answer as expected. Please try again."


@dataclass(frozen=True)
class SetupIntentInfo:
    id: str
    client_secret: str


@dataclass(frozen=True)
class Card:
    id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    default: bool


@dataclass(frozen=True)
class PaymentIntentInfo:
    id: str
    status: str
    client_secret: str
    amount_cents: int
    currency: str
    payment_method_id: str | None
    card_brand: str | None
    card_last4: str | None
    error_code: str | None
    error_message: str | None
    next_action_type: str | None


@dataclass(frozen=True)
class RefundInfo:
    id: str
    amount_cents: int
    status: str


# --- configuration -----------------------------------------------------------


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


# --- customers ---------------------------------------------------------------


def customer_id_for(*, account: Account) -> str:
    """The account's Stripe customer, made on first use, once."""
    api_key = _api_key()
    livemode = _livemode(api_key)
    found = _local_customer(account, livemode)
    if found is not None:
        return found.id
    # dj-stripe's key for this action, stored before the call (and outside the
    # transaction below): a retry after a lost answer gets the same customer
    # back from Stripe instead of a second one.
    idempotency_key = djstripe_settings.get_idempotency_key(
        "customer", f"create:{account.pk}", livemode
    )
    with transaction.atomic():
        # The account row's lock makes concurrent first calls wait for the one
        # that creates the customer, then find it.
        Account.objects.select_for_update().get(pk=account.pk)
        found = _local_customer(account, livemode)
        if found is not None:
            return found.id
        try:
            customer = stripe.Customer.create(
                api_key=api_key,
                idempotency_key=idempotency_key,
                email=account.email,
                name=account.name or account.owner.full_name or None,
                metadata={
                    djstripe_settings.SUBSCRIBER_CUSTOMER_KEY: str(account.pk),
                    "account_id": str(account.pk),
                },
            )
            # Not _mirror: the local row is what makes the next call find it.
            djstripe.Customer.sync_from_stripe_data(customer, api_key=api_key)
        except stripe.StripeError as exc:
            raise _failure(exc, "customer create") from exc
        return customer.id


def _customer_id_existing(account: Account) -> str | None:
    """The account's customer if it has one: reads make none."""
    found = _local_customer(account, _livemode(settings.STRIPE_SECRET_KEY))
    return found.id if found is not None else None


def _local_customer(account: Account, livemode: bool):
    return (
        djstripe.Customer.objects.filter(
            subscriber=account, livemode=livemode, date_purged__isnull=True
        )
        .order_by("djstripe_id")
        .first()
    )


def _default_payment_method_id(customer_id: str, *, api_key: str) -> str | None:
    customer = stripe.Customer.retrieve(customer_id, api_key=api_key)
    settings_ = _plain(_get(customer, "invoice_settings"))
    return _id_of(settings_.get("default_payment_method"))


def _default_set(customer_id: str, payment_method_id: str, *, api_key: str) -> None:
    customer = stripe.Customer.modify(
        customer_id,
        api_key=api_key,
        invoice_settings={"default_payment_method": payment_method_id},
    )
    _mirror(djstripe.Customer, customer, api_key=api_key)


# --- cards -------------------------------------------------------------------


def setup_intent_create(*, account: Account) -> SetupIntentInfo:
    """Start saving a card: Stripe.js confirms the client secret
    (``confirmCardSetup``); the card then shows in ``cards_list``."""
    api_key = _api_key()
    customer_id = customer_id_for(account=account)
    try:
        intent = stripe.SetupIntent.create(
            api_key=api_key,
            customer=customer_id,
            usage="off_session",
            payment_method_types=["card"],
            metadata={"account_id": str(account.pk)},
        )
    except stripe.StripeError as exc:
        raise _failure(exc, "setup intent create") from exc
    # Remembered so that the card it saves can be attached if Stripe did not
    # (localstripe does not; see _setup_intents_settle).
    _mirror(djstripe.SetupIntent, intent, api_key=api_key)
    return SetupIntentInfo(id=intent.id, client_secret=intent.client_secret)


def _setup_intents_settle(customer_id: str, *, api_key: str) -> None:
    """Attach the cards of the customer's recently confirmed SetupIntents.

    Stripe attaches a card to the SetupIntent's customer when the intent is
    confirmed; localstripe does not. So the SetupIntents this module made and
    has not yet seen succeed are read back, and a confirmed one whose card is
    attached to no one gets it attached here. Against Stripe this only reads
    each new SetupIntent once more.
    """
    pending = djstripe.SetupIntent.objects.filter(
        customer__id=customer_id,
        created__gte=timezone.now() - _SETUP_INTENT_WATCH,
    ).exclude(stripe_data__status__in=["succeeded", "canceled"])
    for local in pending:
        try:
            intent = stripe.SetupIntent.retrieve(local.id, api_key=api_key)
            pm_id = _id_of(_get(intent, "payment_method"))
            if intent.status == "succeeded" and pm_id:
                pm = stripe.PaymentMethod.retrieve(pm_id, api_key=api_key)
                if not _get(pm, "customer"):
                    pm = stripe.PaymentMethod.attach(
                        pm_id, customer=customer_id, api_key=api_key
                    )
                    _card_attached(customer_id, pm, api_key=api_key)
        except stripe.StripeError as exc:
            # One bad SetupIntent must not hide the saved cards.
            _failure_log(exc, "setup intent settle")
            continue
        _mirror(djstripe.SetupIntent, intent, api_key=api_key)


def _card_attached(customer_id: str, pm, *, api_key: str) -> None:
    """A card just attached: mirrored, and made the default if there is none
    (auto top-up charges the default card)."""
    _mirror(djstripe.PaymentMethod, pm, api_key=api_key)
    if not _default_payment_method_id(customer_id, api_key=api_key):
        _default_set(customer_id, pm.id, api_key=api_key)


def _card(pm, *, default_id: str | None) -> Card:
    card = _plain(_get(pm, "card"))
    return Card(
        id=pm.id,
        brand=card.get("brand") or "",
        last4=card.get("last4") or "",
        exp_month=int(card.get("exp_month") or 0),
        exp_year=int(card.get("exp_year") or 0),
        default=pm.id == default_id,
    )


def cards_list(*, account: Account) -> list[Card]:
    """The account's saved cards, the default one marked (the customer's
    default payment method, or else the first card)."""
    api_key = _api_key()
    customer_id = _customer_id_existing(account)
    if customer_id is None:
        return []
    _setup_intents_settle(customer_id, api_key=api_key)
    try:
        # Customer.list_payment_methods would do, but localstripe lacks it.
        listed = stripe.PaymentMethod.list(
            api_key=api_key, customer=customer_id, type="card", limit=100
        )
        methods = list(listed.auto_paging_iter())
        default_id = _default_payment_method_id(customer_id, api_key=api_key)
    except stripe.StripeError as exc:
        raise _failure(exc, "cards list") from exc
    ids = [pm.id for pm in methods]
    if default_id not in ids:
        default_id = ids[0] if ids else None
    for pm in methods:
        _mirror(djstripe.PaymentMethod, pm, api_key=api_key)
    # Cards detached elsewhere (the dashboard) leave the mirror too.
    djstripe.PaymentMethod.objects.filter(customer__id=customer_id).exclude(
        id__in=ids
    ).update(customer=None)
    return [_card(pm, default_id=default_id) for pm in methods]


def _owned_card(account: Account, payment_method_id: str, *, api_key: str):
    """The card, if it is saved on this account; else UnknownPaymentMethod."""
    pm_id = _checked_id(payment_method_id, ("pm_", "card_"))
    customer_id = _customer_id_existing(account)
    if customer_id is None:
        raise UnknownPaymentMethod("No such saved card.")
    try:
        pm = stripe.PaymentMethod.retrieve(pm_id, api_key=api_key)
        if not _get(pm, "customer"):
            # Maybe saved a moment ago through a SetupIntent (localstripe).
            _setup_intents_settle(customer_id, api_key=api_key)
            pm = stripe.PaymentMethod.retrieve(pm_id, api_key=api_key)
    except stripe.InvalidRequestError as exc:
        if exc.http_status == 404:
            raise UnknownPaymentMethod("No such saved card.") from exc
        raise _failure(exc, "card retrieve") from exc
    except stripe.StripeError as exc:
        raise _failure(exc, "card retrieve") from exc
    if _id_of(_get(pm, "customer")) != customer_id or _get(pm, "type") != "card":
        raise UnknownPaymentMethod("No such saved card.")
    return customer_id, pm


def card_attach(*, account: Account, payment_method_id: str) -> Card:
    """Save a card (made by Stripe.js) on the account. A card already saved
    here is fine; a card saved on another customer is refused."""
    api_key = _api_key()
    pm_id = _checked_id(payment_method_id, ("pm_",))
    customer_id = customer_id_for(account=account)
    try:
        pm = stripe.PaymentMethod.retrieve(pm_id, api_key=api_key)
        owner = _id_of(_get(pm, "customer"))
        if owner is not None and owner != customer_id:
            raise UnknownPaymentMethod("No such saved card.")
        if owner is None:
            pm = stripe.PaymentMethod.attach(
                pm_id, customer=customer_id, api_key=api_key
            )
        _card_attached(customer_id, pm, api_key=api_key)
        default_id = _default_payment_method_id(customer_id, api_key=api_key)
    except stripe.InvalidRequestError as exc:
        if exc.http_status == 404:
            raise UnknownPaymentMethod("No such saved card.") from exc
        raise _failure(exc, "card attach") from exc
    except stripe.StripeError as exc:
        # A card refused when saved (CardError) says why in its message.
        raise _failure(exc, "card attach") from exc
    return _card(pm, default_id=default_id)


def card_get(*, account: Account, payment_method_id: str) -> Card:
    api_key = _api_key()
    customer_id, pm = _owned_card(account, payment_method_id, api_key=api_key)
    try:
        default_id = _default_payment_method_id(customer_id, api_key=api_key)
    except stripe.StripeError as exc:
        raise _failure(exc, "card get") from exc
    return _card(pm, default_id=default_id)


def card_set_default(*, account: Account, payment_method_id: str) -> None:
    api_key = _api_key()
    customer_id, pm = _owned_card(account, payment_method_id, api_key=api_key)
    try:
        _default_set(customer_id, pm.id, api_key=api_key)
    except stripe.StripeError as exc:
        raise _failure(exc, "card set default") from exc


def card_detach(*, account: Account, payment_method_id: str) -> None:
    """Remove a saved card. If it was the default, the customer has none
    until another is chosen (``cards_list`` then marks the first)."""
    api_key = _api_key()
    customer_id, pm = _owned_card(account, payment_method_id, api_key=api_key)
    try:
        detached = stripe.PaymentMethod.detach(pm.id, api_key=api_key)
        # Stripe clears a detached default itself; localstripe does not.
        if _default_payment_method_id(customer_id, api_key=api_key) == pm.id:
            customer = stripe.Customer.modify(
                customer_id,
                api_key=api_key,
                invoice_settings={"default_payment_method": ""},
            )
            _mirror(djstripe.Customer, customer, api_key=api_key)
    except stripe.StripeError as exc:
        raise _failure(exc, "card detach") from exc
    _mirror(djstripe.PaymentMethod, detached, api_key=api_key)


# --- payments ----------------------------------------------------------------


def payment_intent_create(
    *,
    account: Account,
    amount_cents: int,
    method: str,
    payment_method_id: str | None = None,
    confirm: bool = False,
    off_session: bool = False,
    idempotency_key: str,
    metadata: dict,
    return_url: str | None = None,
) -> PaymentIntentInfo:
    """Create (and with ``confirm`` confirm) a PaymentIntent in USD.

    A declined card does not raise: the answer carries the PaymentIntent's
    status and ``error_code``/``error_message`` (``card_declined``,
    ``authentication_required`` off-session, ...). Other Stripe failures raise
    ``PaymentFailed`` with a message fit for the customer.

    ``return_url`` is sent only with a server-side confirmed Alipay payment (a
    redirect). Cards need none: Stripe.js finishes 3-D Secure from
    ``requires_action`` with the client secret (and localstripe refuses it).
    """
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
        raise TypeError("amount_cents must be an int")
    if amount_cents <= 0:
        raise ValueError("amount_cents must be positive")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}")
    if off_session and not confirm:
        raise ValueError("an off-session payment is confirmed at once")
    if not idempotency_key:
        raise ValueError("idempotency_key is required")
    api_key = _api_key()
    if payment_method_id is not None:
        # Refused here (404 to the API) rather than by Stripe's vaguer error.
        _owned_card(account, payment_method_id, api_key=api_key)
    customer_id = customer_id_for(account=account)
    params: dict[str, Any] = {
        "amount": amount_cents,
        "currency": CURRENCY,
        "customer": customer_id,
        "payment_method_types": [method],
        "metadata": {
            **{str(k): str(v) for k, v in metadata.items()},
            "account_id": str(account.pk),
        },
        # The card's brand and last digits come with the answer.
        "expand": ["payment_method"],
    }
    if payment_method_id is not None:
        params["payment_method"] = payment_method_id
    if confirm:
        params["confirm"] = True
        if off_session:
            params["off_session"] = True
        if return_url and method != "card":
            params["return_url"] = return_url
    try:
        intent = stripe.PaymentIntent.create(
            api_key=api_key, idempotency_key=idempotency_key, **params
        )
    except stripe.CardError as exc:
        # Declined: the PaymentIntent exists and says why.
        intent = _declined_intent(exc, api_key=api_key)
        _failure_log(exc, "payment intent confirm")
        info = _intent_info(
            intent,
            error_code=exc.code or "card_declined",
            error_message=exc.user_message or "Your card was declined.",
        )
    except stripe.StripeError as exc:
        raise _failure(exc, "payment intent create") from exc
    else:
        info = _intent_info(intent)
        if off_session and info.status == "requires_action" and not info.error_code:
            # Stripe answers an off-session payment that needs 3-D Secure with
            # the error authentication_required; localstripe with
            # requires_action. Both read the same here.
            info = _with_error(
                info,
                code="authentication_required",
                message="Your bank asks you to confirm this payment (3-D Secure).",
            )
    _mirror(djstripe.PaymentIntent, intent, api_key=api_key)
    return info


def _declined_intent(exc: stripe.CardError, *, api_key: str):
    """The PaymentIntent a declined confirmation left behind."""
    error = _plain(exc.error) if exc.error is not None else {}
    pi_id = _id_of(error.get("payment_intent"))  # Stripe says which
    try:
        if pi_id is None and error.get("charge"):
            # localstripe names only the charge.
            charge = stripe.Charge.retrieve(error["charge"], api_key=api_key)
            pi_id = _id_of(_get(charge, "payment_intent"))
        if pi_id is None:
            raise _failure(exc, "payment intent confirm")
        return stripe.PaymentIntent.retrieve(
            pi_id, api_key=api_key, expand=["payment_method"]
        )
    except stripe.StripeError as inner:
        raise _failure(inner, "declined payment intent retrieve") from exc


def _with_error(info: PaymentIntentInfo, *, code: str, message: str):
    return PaymentIntentInfo(
        **{**info.__dict__, "error_code": code, "error_message": message}
    )


def _intent_info(
    intent, *, error_code: str | None = None, error_message: str | None = None
) -> PaymentIntentInfo:
    pm = _get(intent, "payment_method")
    card = _plain(_plain(pm).get("card")) if pm and not isinstance(pm, str) else {}
    if error_code is None and intent.status == "requires_payment_method":
        last_error = _plain(_get(intent, "last_payment_error"))
        if last_error:
            error_code = last_error.get("code") or "payment_failed"
            error_message = last_error.get("message") or "The payment failed."
    next_action = _plain(_get(intent, "next_action"))
    return PaymentIntentInfo(
        id=intent.id,
        status=intent.status,
        client_secret=intent.client_secret,
        amount_cents=int(intent.amount),
        currency=str(_get(intent, "currency") or ""),
        payment_method_id=_id_of(pm),
        card_brand=card.get("brand"),
        card_last4=card.get("last4"),
        error_code=error_code,
        error_message=error_message,
        next_action_type=next_action.get("type"),
    )


def payment_intent_retrieve(*, payment_intent_id: str) -> PaymentIntentInfo:
    """A PaymentIntent as Stripe has it now (the caller checks whose it is)."""
    api_key = _api_key()
    if not isinstance(payment_intent_id, str) or not _STRIPE_ID.fullmatch(
        payment_intent_id
    ):
        raise PaymentFailed("No such payment.")
    try:
        intent = stripe.PaymentIntent.retrieve(
            payment_intent_id, api_key=api_key, expand=["payment_method"]
        )
    except stripe.StripeError as exc:
        raise _failure(exc, "payment intent retrieve") from exc
    _mirror(djstripe.PaymentIntent, intent, api_key=api_key)
    return _intent_info(intent)


def refund_create(
    *, payment_intent_id: str, amount_cents: int, idempotency_key: str
) -> RefundInfo:
    """Refund part or all of a succeeded PaymentIntent (not mirrored: dj-stripe
    would fetch the charge and its balance transactions)."""
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
        raise TypeError("amount_cents must be an int")
    if amount_cents <= 0:
        raise ValueError("amount_cents must be positive")
    if not idempotency_key:
        raise ValueError("idempotency_key is required")
    api_key = _api_key()
    try:
        refund = stripe.Refund.create(
            api_key=api_key,
            idempotency_key=idempotency_key,
            payment_intent=payment_intent_id,
            amount=amount_cents,
        )
    except stripe.StripeError as exc:
        raise _failure(exc, "refund create", error=RefundFailed) from exc
    return RefundInfo(
        id=refund.id, amount_cents=int(refund.amount), status=refund.status
    )


def refunds_list(*, payment_intent_id: str) -> list[RefundInfo]:
    """The refunds of a PaymentIntent, as Stripe has them now (for a
    ``charge.refunded`` event whose charge does not list them)."""
    api_key = _api_key()
    if not isinstance(payment_intent_id, str) or not _STRIPE_ID.fullmatch(
        payment_intent_id
    ):
        raise RefundFailed("No such payment.")
    try:
        listed = stripe.Refund.list(
            api_key=api_key, payment_intent=payment_intent_id, limit=100
        )
        refunds = list(listed.auto_paging_iter())
    except stripe.StripeError as exc:
        raise _failure(exc, "refunds list", error=RefundFailed) from exc
    return [
        RefundInfo(id=r.id, amount_cents=int(r.amount), status=str(r.status or ""))
        for r in refunds
    ]
