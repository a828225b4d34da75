"""Gift codes' services, in one place for the API, the console, admin and
tasks; each lives in the module named after what it does."""

from __future__ import annotations

from gifts.delivery import gift_card_email_send, gift_cards_unsent
from gifts.promotions import promotion_create, promotion_mint
from gifts.purchases import (
    StartedGiftCard,
    gift_card_code_reveal,
    gift_card_refresh,
    gift_card_refund,
    gift_card_refund_refusal,
    gift_card_start,
)
from gifts.redemption import Redeemed, code_redeem, redeem_unlock

__all__ = [
    "Redeemed",
    "StartedGiftCard",
    "code_redeem",
    "gift_card_code_reveal",
    "gift_card_email_send",
    "gift_card_refresh",
    "gift_card_refund",
    "gift_card_refund_refusal",
    "gift_card_start",
    "gift_cards_unsent",
    "promotion_create",
    "promotion_mint",
    "redeem_unlock",
]
