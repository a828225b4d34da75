"""Stripe customers and their saved cards: the account's customer (made once),
SetupIntents that save a card with Stripe.js, and the cards listed, fetched,
made default and removed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import stripe
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from djstripe import models as djstripe
from djstripe.settings import djstripe_settings

from accounts.models import Account
from billing.errors import UnknownPaymentMethod
from billing.payments.stripe_gateway.client import (
    _api_key,
    _checked_id,
    _failure,
    _failure_log,
    _get,
    _id_of,
    _livemode,
    _mirror,
    _plain,
)

# A SetupIntent not confirmed within this time is not looked at again.
_SETUP_INTENT_WATCH = timedelta(hours=24)


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


# --- card fingerprints (the same card on two accounts) -----------------------


def card_fingerprint(*, payment_method_id: str) -> str | None:
    """The fingerprint Stripe gives a card number (the same on every account
    that uses the card), of any customer's PaymentMethod; None for one that is
    not a card or that Stripe does not know."""
    api_key = _api_key()
    pm_id = _checked_id(payment_method_id, ("pm_", "card_"))
    try:
        pm = stripe.PaymentMethod.retrieve(pm_id, api_key=api_key)
    except stripe.InvalidRequestError as exc:
        if exc.http_status == 404:
            return None
        raise _failure(exc, "card fingerprint") from exc
    except stripe.StripeError as exc:
        raise _failure(exc, "card fingerprint") from exc
    return _plain(_get(pm, "card")).get("fingerprint") or None


def card_fingerprints(*, account: Account) -> set[str]:
    """The fingerprints of the cards saved on the account now (none without a
    Stripe customer: reads make none)."""
    api_key = _api_key()
    customer_id = _customer_id_existing(account)
    if customer_id is None:
        return set()
    try:
        listed = stripe.PaymentMethod.list(
            api_key=api_key, customer=customer_id, type="card", limit=100
        )
        methods = list(listed.auto_paging_iter())
    except stripe.StripeError as exc:
        raise _failure(exc, "card fingerprints") from exc
    found = {_plain(_get(pm, "card")).get("fingerprint") for pm in methods}
    return {fingerprint for fingerprint in found if fingerprint}
