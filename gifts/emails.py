"""The email that hands a gift card's code to its recipient, plain text,
through Django's email backend. The code is in the body only: never in a log
line, a subject or a task's arguments."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse

from gifts.models import GiftCard
from money import format_usd


def gift_card_email_deliver(*, card: GiftCard, code: str) -> None:
    buyer = card.buyer.owner
    sender = buyer.full_name or buyer.email
    link = settings.SITE_URL.rstrip("/") + reverse("console:gift-codes")
    send_mail(
        subject=f"{sender} sent you an AGIPower gift card",
        message=(
            f"{sender} sent you an AGIPower gift card worth "
            f"{format_usd(card.amount_nanos)} of API credits.\n\n"
            f"Your code: {code}\n\n"
            f"Sign in (or sign up) as {card.recipient_email} and redeem it on the "
            f"Gift codes page: {link}\n\n"
            "Only the account with this email address can redeem it, once.\n"
        ),
        from_email=None,
        recipient_list=[card.recipient_email],
    )
