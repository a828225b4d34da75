"""Reads: an account's gift cards, newest first, and what each may do now."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Account
from billing.models import TopUpStatus
from gifts.models import GiftCard, GiftCardStatus, Redemption


def gift_cards_of(*, account: Account) -> QuerySet[GiftCard]:
    return (
        GiftCard.objects.filter(buyer=account)
        .select_related("topup")
        .order_by("-created_at", "-pk")
    )


def gift_card_of(*, account: Account, card_id: int) -> GiftCard | None:
    return gift_cards_of(account=account).filter(pk=card_id).first()


def gift_card_status(card: GiftCard) -> str:
    """The card's status, or "failed" for one whose payment failed."""
    if card.status == GiftCardStatus.PENDING and card.topup.status in (
        TopUpStatus.FAILED,
        TopUpStatus.CANCELED,
        TopUpStatus.MISMATCH,
    ):
        return "failed"
    return card.status


def gift_card_code_shown(card: GiftCard) -> str:
    """What of the code a list shows: its last four characters, once made."""
    return f"AGIP-…-{card.code_last4}" if card.code_last4 else ""


def redemptions_of(*, account: Account, limit: int = 20) -> list[Redemption]:
    return list(
        Redemption.objects.filter(account=account)
        .select_related("batch", "gift_card")
        .order_by("-created_at", "-pk")[:limit]
    )
