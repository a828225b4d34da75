"""Stripe's webhook events about payments, each handed to its service.

Thin on purpose: they read the event's object and call one function. They run
inside the webhook's transaction (``billing.payments.webhooks``) and must be idempotent.
"""

from __future__ import annotations

from billing.payments import stripe_gateway as gateway
from billing.payments.refunds import (
    StripeRefund,
    topup_dispute_update,
    topup_refunds_sync,
)
from billing.payments.self_refunds import self_refunds_sync
from billing.payments.topups import topup_failed, topup_paid
from billing.payments.webhooks import webhook_handler


def _card_of(intent: dict) -> tuple[str, str]:
    charges = (intent.get("charges") or {}).get("data") or []
    for charge in charges:
        card = (charge.get("payment_method_details") or {}).get("card") or {}
        if card:
            return card.get("brand") or "", card.get("last4") or ""
    return "", ""


def _id(value) -> str | None:
    """A field that is an id or an expanded object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else None


@webhook_handler("payment_intent.succeeded")
def on_payment_intent_succeeded(event: dict) -> None:
    intent = event["data"]["object"]
    brand, last4 = _card_of(intent)
    topup_paid(
        payment_intent_id=intent["id"],
        amount_cents=int(intent["amount"]),
        currency=str(intent.get("currency") or ""),
        metadata_topup=(intent.get("metadata") or {}).get("topup"),
        card_brand=brand,
        card_last4=last4,
    )


@webhook_handler("payment_intent.payment_failed")
def on_payment_intent_failed(event: dict) -> None:
    intent = event["data"]["object"]
    error = intent.get("last_payment_error") or {}
    topup_failed(
        payment_intent_id=intent["id"],
        metadata_topup=(intent.get("metadata") or {}).get("topup"),
        code=error.get("code") or error.get("decline_code") or "",
        message=error.get("message") or "",
    )


@webhook_handler("charge.refunded")
def on_charge_refunded(event: dict) -> None:
    """A refund, made here or in Stripe's dashboard. The charge lists its
    refunds when the API version includes them; else Stripe is asked."""
    charge = event["data"]["object"]
    payment_intent_id = _id(charge.get("payment_intent"))
    if payment_intent_id is None:
        return  # a charge made without a PaymentIntent is no top-up of ours
    listed = charge.get("refunds") or {}
    if isinstance(listed.get("data"), list) and not listed.get("has_more"):
        refunds = [_refund_info(refund) for refund in listed["data"]]
    else:
        refunds = gateway.refunds_list(payment_intent_id=payment_intent_id)
    # Self-service refunds end by Stripe's word; the others are taken back.
    others = self_refunds_sync(payment_intent_id=payment_intent_id, refunds=refunds)
    topup_refunds_sync(
        payment_intent_id=payment_intent_id,
        refunds=[
            StripeRefund(id=r.id, amount_cents=r.amount_cents, status=r.status)
            for r in others
        ],
    )


def _refund_info(refund: dict) -> gateway.RefundInfo:
    return gateway.RefundInfo(
        id=str(refund["id"]),
        amount_cents=int(refund["amount"]),
        status=str(refund.get("status") or "succeeded"),
        metadata=dict(refund.get("metadata") or {}),
    )


@webhook_handler("charge.refund.updated")
@webhook_handler("refund.updated")
@webhook_handler("refund.failed")
def on_refund_updated(event: dict) -> None:
    """A refund's status changed (Stripe sends these when a refund fails or
    is canceled after it was made; the names vary with its API versions): a
    self-service refund ends by it."""
    refund = event["data"]["object"]
    payment_intent_id = _id(refund.get("payment_intent"))
    if payment_intent_id is None:
        return
    self_refunds_sync(
        payment_intent_id=payment_intent_id, refunds=[_refund_info(refund)]
    )


def _dispute(event: dict, *, closed: bool) -> None:
    dispute = event["data"]["object"]
    payment_intent_id = _id(dispute.get("payment_intent"))
    if payment_intent_id is None:
        return
    topup_dispute_update(
        payment_intent_id=payment_intent_id,
        dispute_id=str(dispute["id"]),
        amount_cents=int(dispute["amount"]),
        status=str(dispute.get("status") or ""),
        closed=closed,
    )


@webhook_handler("charge.dispute.created")
def on_dispute_created(event: dict) -> None:
    _dispute(event, closed=False)


@webhook_handler("charge.dispute.closed")
def on_dispute_closed(event: dict) -> None:
    _dispute(event, closed=True)
