"""The console's Gift codes page (/console/gift-codes): redeem a code (and see
what it credited and the balance now), buy gift cards (the browser pays
through the REST API and Stripe.js, as top-ups do), and the cards bought,
with a bearer card's code shown once and a refund within 24 hours."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from accounts.access import account_required
from accounts.models import Account
from billing.errors import BillingError
from billing.ledger.selectors import balance_get
from billing.payments import stripe_gateway as gateway
from billing.payments.rules import refund_fee_nanos, refund_fee_percent
from gifts import services
from gifts.errors import GiftError
from gifts.rules import (
    DAILY_CARDS,
    DAILY_NANOS,
    MAX_CARD_NANOS,
    MIN_CARD_NANOS,
)
from gifts.selectors import (
    gift_card_code_shown,
    gift_card_status,
    gift_cards_of,
    redemptions_of,
)
from money import format_usd, usd

STATUS_TEXT = {
    "pending": "Awaiting payment",
    "failed": "Payment failed",
    "active": "Active",
    "redeemed": "Redeemed",
    "refunded": "Refunded",
    "disputed": "Disputed",
}


def _message(exc: GiftError) -> str:
    """ "code: this code has a typo" -> "This code has a typo." """
    text = str(exc).split(": ", 1)[-1].strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _page(request, account: Account, *, status: int = 200, **extra):
    cards = []
    for card in gift_cards_of(account=account)[:100]:
        refusal = services.gift_card_refund_refusal(card)
        fee = refund_fee_nanos(card.amount_nanos)
        cards.append(
            {
                "card": card,
                "amount": format_usd(card.amount_nanos),
                "status": gift_card_status(card),
                "status_text": STATUS_TEXT[gift_card_status(card)],
                "code_hint": gift_card_code_shown(card),
                "can_reveal": card.status == "active"
                and not card.recipient_email
                and not card.code_digest,
                "refundable": not refusal,
                "refund": format_usd(card.amount_nanos - fee),
            }
        )
    configured = gateway.stripe_configured()
    context = {
        "nav": "gift-codes",
        "balance": usd(balance_get(account=account).total_nanos, precise=True),
        "cards": cards,
        "redemptions": [
            {
                "redemption": r,
                "amount": format_usd(r.amount_nanos),
                "what": (
                    f"Gift card …{r.gift_card.code_last4}"
                    if r.gift_card
                    else f"Discount: {r.batch.name}"
                ),
            }
            for r in redemptions_of(account=account)
        ],
        "rules": {
            "min": format_usd(MIN_CARD_NANOS),
            "max": format_usd(MAX_CARD_NANOS),
            "daily_cards": DAILY_CARDS,
            "daily_amount": format_usd(DAILY_NANOS),
            "fee_percent": refund_fee_percent(),
        },
        "payments": {
            "configured": configured,
            "publishable_key": settings.STRIPE_PUBLISHABLE_KEY if configured else "",
            "js_url": settings.STRIPE_JS_URL if configured else "",
        },
        **extra,
    }
    return render(request, "console/gifts.html", context, status=status)


@never_cache
@sensitive_post_parameters("code")
@account_required
def gift_codes(request, account: Account):
    if request.method != "POST":
        return _page(request, account)
    code = request.POST.get("code", "")
    try:
        redeemed = services.code_redeem(account=account, code=code)
    except GiftError as exc:
        return _page(
            request,
            account,
            status=exc.status,
            redeem_error=_message(exc),
            redeem_code=code[:100],
        )
    what = "Gift card" if redeemed.type == "gift" else "Discount"
    messages.success(
        request,
        f"{what}: {format_usd(redeemed.amount_nanos)} credited. Your balance is "
        f"now {usd(redeemed.balance_nanos, precise=True)}.",
    )
    return redirect("console:gift-codes")


@never_cache
@require_POST
@account_required
def gift_card_code(request, account: Account, card_id: int):
    """A bearer card's code, shown on this answer once (never stored)."""
    try:
        code = services.gift_card_code_reveal(account=account, card_id=card_id)
    except GiftError as exc:
        if exc.status == 404:
            raise Http404("No such gift card.") from exc
        messages.error(request, _message(exc))
        return redirect("console:gift-codes")
    return _page(request, account, revealed={"id": card_id, "code": code})


@require_POST
@account_required
def gift_card_refund(request, account: Account, card_id: int):
    try:
        card = services.gift_card_refund(account=account, card_id=card_id)
    except GiftError as exc:
        if exc.status == 404:
            raise Http404("No such gift card.") from exc
        messages.error(request, _message(exc))
    except BillingError as exc:  # Stripe refused the refund: nothing changed
        messages.error(request, f"The refund did not go through: {exc}")
    else:
        messages.success(
            request,
            f"Gift card refunded: {format_usd(card.refund_nanos)} goes back to your "
            f"card ({format_usd(card.refund_fee_nanos)} fee). Its code no longer "
            "works.",
        )
    return redirect("console:gift-codes")
