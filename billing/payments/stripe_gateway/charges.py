"""Stripe payments: PaymentIntents made, confirmed and read back, and refunds
of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import stripe
from djstripe import models as djstripe

from accounts.models import Account
from billing.errors import PaymentFailed, RefundFailed, RefundUncertain
from billing.payments.stripe_gateway.client import (
    _STRIPE_ID,
    CURRENCY,
    METHODS,
    _api_key,
    _failure,
    _failure_log,
    _get,
    _id_of,
    _mirror,
    _plain,
)
from billing.payments.stripe_gateway.customers import _owned_card, customer_id_for


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
    metadata: dict = field(default_factory=dict)


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
    *,
    payment_intent_id: str,
    amount_cents: int,
    idempotency_key: str,
    metadata: dict | None = None,
) -> RefundInfo:
    """Refund part or all of a succeeded PaymentIntent (not mirrored: dj-stripe
    would fetch the charge and its balance transactions).

    ``RefundUncertain`` (a ``RefundFailed``) when Stripe could not be reached
    or failed on its side: the refund may exist. The same idempotency key
    sent again (within Stripe's 24 hours) answers with it, or makes it once.
    """
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
        raise TypeError("amount_cents must be an int")
    if amount_cents <= 0:
        raise ValueError("amount_cents must be positive")
    if not idempotency_key:
        raise ValueError("idempotency_key is required")
    api_key = _api_key()
    params: dict[str, Any] = {}
    if metadata:
        params["metadata"] = {str(k): str(v) for k, v in metadata.items()}
    try:
        refund = stripe.Refund.create(
            api_key=api_key,
            idempotency_key=idempotency_key,
            payment_intent=payment_intent_id,
            amount=amount_cents,
            **params,
        )
    except (stripe.APIConnectionError, stripe.APIError) as exc:
        raise _failure(exc, "refund create", error=RefundUncertain) from exc
    except stripe.StripeError as exc:
        raise _failure(exc, "refund create", error=RefundFailed) from exc
    return _refund_info(refund)


def refund_retrieve(*, refund_id: str) -> RefundInfo:
    """A refund as Stripe has it now (its status)."""
    api_key = _api_key()
    if not isinstance(refund_id, str) or not _STRIPE_ID.fullmatch(refund_id):
        raise RefundFailed("No such refund.")
    try:
        refund = stripe.Refund.retrieve(refund_id, api_key=api_key)
    except (stripe.APIConnectionError, stripe.APIError) as exc:
        raise _failure(exc, "refund retrieve", error=RefundUncertain) from exc
    except stripe.StripeError as exc:
        raise _failure(exc, "refund retrieve", error=RefundFailed) from exc
    return _refund_info(refund)


def _refund_info(refund) -> RefundInfo:
    return RefundInfo(
        id=refund.id,
        amount_cents=int(refund.amount),
        status=str(_get(refund, "status") or ""),
        metadata=dict(_plain(_get(refund, "metadata"))),
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
    return [_refund_info(r) for r in refunds]
