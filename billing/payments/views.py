"""Console pages for payments: the Billing page and the page Alipay returns to.

Thin on purpose: they render pages. The browser does the work through the REST
API (``billing.payments.api``) with the session and the CSRF token, and Stripe.js
collects cards. Nothing here credits anything: credits come only from Stripe's
word that a payment succeeded (the webhook, or the server's own check).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from accounts.access import account_required
from accounts.models import Account, BillingProfile
from billing.errors import BillingError
from billing.models import AutoTopUp, SelfRefundStatus, TopUp
from billing.payments import stripe_gateway as gateway
from billing.payments.rules import refund_fee_percent
from billing.payments.services import (
    MAX_TOPUP_NANOS,
    MIN_TOPUP_NANOS,
    self_refund_open,
    self_refund_quote,
    self_refund_request,
)
from money import format_usd


def payments_config() -> dict:
    """What the console's payment dialogs need to know: whether payments work
    here, Stripe.js and its publishable key, and the top-up rules."""
    configured = gateway.stripe_configured()
    return {
        "configured": configured,
        "publishable_key": settings.STRIPE_PUBLISHABLE_KEY if configured else "",
        "js_url": settings.STRIPE_JS_URL if configured else "",
        "bonus_rate": str(settings.BONUS_RATE),
        "min_amount": format_usd(MIN_TOPUP_NANOS),
        "max_amount": format_usd(MAX_TOPUP_NANOS),
    }


def payments_mode(request) -> dict:
    """Context for every page: ``stripe_local`` is true in the local test
    payments mode (``STRIPE_LOCAL``), whose banner the console shows."""
    return {"stripe_local": bool(settings.STRIPE_LOCAL)}


def payments_context() -> dict:
    """The context the dialogs' template (``console/payments_dialogs.html``)
    reads; a page without it makes the dialogs ask ``payments_config_json``."""
    return {"payments": payments_config()}


def _sentence(text: str) -> str:
    """ "the card was declined" -> "The card was declined." """
    text = (text or "").strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


@account_required
@require_GET
def billing(request, account: Account):
    auto = AutoTopUp.objects.filter(account=account).first()
    context = {
        "nav": "billing",
        "profile": BillingProfile.objects.filter(account=account).first(),
        "auto": {
            "enabled": bool(auto and auto.enabled),
            "paused": bool(auto and auto.enabled and auto.paused_at),
            "paused_reason": _sentence(auto.paused_reason if auto else ""),
            "operator_only": bool(auto and auto.paused_by_operator_only),
            "threshold": format_usd(auto.threshold_nanos) if auto else "",
            "amount": format_usd(auto.amount_nanos) if auto else "",
        },
        **payments_context(),
    }
    return render(request, "console/payments_billing.html", context)


@login_required
@require_GET
def payments_config_json(request):
    """The dialogs' settings, for pages whose view does not pass them."""
    return JsonResponse(payments_config())


@account_required
@require_GET
def topup_return(request, account: Account, topup_id: int):
    """Where Stripe sends the customer back after Alipay. The page asks the API
    for the top-up (which asks Stripe); what the URL says is never trusted."""
    topup = get_object_or_404(TopUp, pk=topup_id, account=account)
    context = {
        "nav": "payg",
        "topup": topup,
        "amount": format_usd(topup.amount_nanos),
        "bonus": format_usd(topup.bonus_nanos),
        "total": format_usd(topup.amount_nanos + topup.bonus_nanos),
    }
    return render(request, "console/topup_return.html", context)


@account_required
@require_http_methods(["GET", "POST"])
def topup_refund(request, account: Account, topup_id: int):
    """Refund a fresh top-up: the confirmation (what comes back, the fee),
    then the request. Another account's top-up is 404."""
    topup = get_object_or_404(TopUp, pk=topup_id, account=account)
    if request.method == "POST":
        try:
            refund = self_refund_request(topup=topup, actor=request.user)
        except BillingError as exc:
            messages.error(request, f"The refund was not made: {exc}")
        else:
            if refund.status in (SelfRefundStatus.FAILED, SelfRefundStatus.CANCELED):
                messages.error(
                    request,
                    f"Stripe refused the refund: {_sentence(refund.failure_message)} "
                    "Your credits are unchanged.",
                )
            else:
                messages.success(
                    request,
                    f"Refund of {format_usd(refund.amount_nanos)} requested: it "
                    "reaches your card in 5–10 business days. The top-up's credits "
                    "and its bonus were taken back.",
                )
        return redirect("console:payg")
    quote = self_refund_quote(topup)
    context = {
        "nav": "payg",
        "topup": topup,
        "open": self_refund_open(topup),
        "window_hours": settings.SELF_REFUND_WINDOW_HOURS,
        "fee_percent": refund_fee_percent(),
        "paid": format_usd(topup.amount_nanos),
        "usage": format_usd(quote.usage_nanos, 9) if quote.usage_nanos else "",
        "already": format_usd(quote.already_nanos) if quote.already_nanos else "",
        "refundable": format_usd(quote.refundable_nanos),
        "fee": format_usd(quote.fee_nanos),
        "amount": format_usd(quote.amount_nanos),
        "nothing": quote.amount_nanos <= 0,
    }
    return render(request, "console/topup_refund.html", context)
