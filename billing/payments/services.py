"""The payments part's services, in one place for the views, the API, admin
and tasks; each lives in the module named after what it does."""

from __future__ import annotations

from billing.payments import events  # noqa: F401  (registers the webhook handlers
from billing.payments.autocharge import (
    autotopup_run,
    autotopup_sweep,
    autotopup_unstick,
)
from billing.payments.autotopup import (
    autotopup_cap,
    autotopup_cap_set,
    autotopup_configure,
    autotopup_get,
    autotopup_unpause,
)
from billing.payments.refunds import (
    refundable_nanos,
    topup_dispute_update,
    topup_refund,
    topup_refunds_sync,
)
from billing.payments.rules import (
    MAX_TOPUP_NANOS,
    MIN_TOPUP_NANOS,
    BillingProfileMissing,
    TopUpRefused,
    bonus_for,
    topup_amount_check,
)
from billing.payments.self_refunds import (
    self_refund_open,
    self_refund_quote,
    self_refund_request,
    self_refunds_resolve,
)
from billing.payments.topups import (
    StartedTopUp,
    paid_text,
    payments_reconcile,
    topup_check,
    topup_paid,
    topup_start,
)

__all__ = [
    "MAX_TOPUP_NANOS",
    "MIN_TOPUP_NANOS",
    "BillingProfileMissing",
    "StartedTopUp",
    "TopUpRefused",
    "autotopup_cap",
    "autotopup_cap_set",
    "autotopup_configure",
    "autotopup_get",
    "autotopup_run",
    "autotopup_sweep",
    "autotopup_unpause",
    "autotopup_unstick",
    "bonus_for",
    "paid_text",
    "payments_reconcile",
    "refundable_nanos",
    "self_refund_open",
    "self_refund_quote",
    "self_refund_request",
    "self_refunds_resolve",
    "topup_amount_check",
    "topup_check",
    "topup_dispute_update",
    "topup_paid",
    "topup_refund",
    "topup_refunds_sync",
    "topup_start",
]
