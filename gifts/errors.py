"""Gift codes' refusals. Each carries its HTTP status and error code, which
``agipower.api_errors`` turns into the API's answer (and the console shows as
the message); nothing was written when one is raised, except a failed
attempt's count (``RedeemLocked`` / ``CodeUnknown``)."""

from __future__ import annotations


class GiftError(Exception):
    code = "gift_error"
    status = 400
    retry_after_seconds: int | None = None


class CodeMalformed(GiftError):
    """Not a code at all, or a typo (the check character): no lookup made."""

    code = "invalid_code"


class CodeUnknown(GiftError):
    """A well-formed code that is none of ours: a failed attempt."""

    code = "unknown_code"


class CodeUsed(GiftError):
    """Redeemed already, voided, used up, or used by this account before."""

    code = "code_used"
    status = 409


class CodeExpired(GiftError):
    code = "code_expired"
    status = 410


class CodeNotForYou(GiftError):
    """A gift card bound to another recipient's email address."""

    code = "code_for_another_recipient"
    status = 403


class CodeOnHold(GiftError):
    """A gift card whose payment is disputed: not redeemable until resolved."""

    code = "code_on_hold"
    status = 409


class RedeemLocked(GiftError):
    code = "redeem_locked"
    status = 429

    def __init__(self, message: str, *, retry_after_seconds: int):
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class GiftCardInvalid(GiftError):
    """A purchase asked for badly (amount, email): the message names the field."""

    code = "invalid_gift_card"


class GiftCardLimit(GiftError):
    """The UTC day's limit of gift card purchases is reached."""

    code = "gift_card_daily_limit"
    status = 429

    def __init__(self, message: str, *, retry_after_seconds: int):
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class GiftCardNotFound(GiftError):
    """No such card among the account's purchases (another's is not shown)."""

    code = "not_found"
    status = 404


class GiftCardRefused(GiftError):
    """The card cannot do that now (show its code again, be refunded)."""

    code = "gift_card_refused"
    status = 409
