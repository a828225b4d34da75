from __future__ import annotations


class BillingError(Exception):
    """A billing operation that was refused; nothing was written."""

    code = "billing_error"


class InvalidAmount(BillingError):
    code = "invalid_amount"


class InsufficientCredits(BillingError):
    code = "insufficient_credits"

    def __init__(self, message: str, *, available_nanos: int, needed_nanos: int):
        super().__init__(message)
        self.available_nanos = available_nanos
        self.needed_nanos = needed_nanos


class IdempotencyConflict(BillingError):
    """The idempotency key was already used for a different operation."""

    code = "idempotency_conflict"


class ReversalRefused(BillingError):
    code = "reversal_refused"


class HoldNotFound(BillingError):
    code = "hold_not_found"


class LedgerDrift(BillingError):
    """The wallet and the lots disagree: reconciliation must look at it."""

    code = "ledger_drift"


class PaymentsNotConfigured(BillingError):
    """Stripe keys are not set on this server (see STRIPE_SECRET_KEY)."""

    code = "payments_not_configured"


class UnknownPaymentMethod(BillingError):
    """No such saved card on this account (it may be another account's)."""

    code = "unknown_payment_method"


class PaymentFailed(BillingError):
    """Stripe refused or could not be reached; the message is safe to show."""

    code = "payment_failed"


class RefundFailed(PaymentFailed):
    code = "refund_failed"


class RefundUncertain(RefundFailed):
    """Stripe could not be reached, or failed on its side, while refunding:
    the refund may have been made. Asking again with the same idempotency key
    tells."""

    code = "refund_uncertain"


class SelfRefundRefused(BillingError):
    """A customer's own refund of a top-up is refused; ``code`` says why and
    the message says it in words."""

    code = "refund_refused"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        if code:
            self.code = code


class RefundInProgress(SelfRefundRefused):
    code = "refund_in_progress"
