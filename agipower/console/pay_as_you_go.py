"""The console's Pay As You Go page: balances, the credits breakdown, and the
transaction history with links to the invoices of top-ups, and to refund a
fresh top-up.

At the top floor because it composes the ledger (balances, the history's
rows), payments (which top-up a row is, and its invoice) and invoices (their
download).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.core.paginator import Paginator
from django.shortcuts import render
from django.urls import reverse

from accounts.access import account_required
from billing.ledger.selectors import (
    Transaction,
    balance_get,
    breakdown_get,
    transactions_list,
)
from billing.models import EntryKind
from billing.payments.selectors import (
    TopUpRefundState,
    topup_invoice_ids,
    topup_refund_states,
)
from money import usd

HISTORY_PAGE_SIZE = 25

# The Credits Breakdown as the product page lists it: (key, label).
BREAKDOWN_LABELS = [
    ("top_ups", "Top-ups"),
    ("bonuses", "Bonuses"),
    ("gifts", "Gifts"),
    ("referrals", "Referrals"),
    ("compensations", "Compensations"),
    ("adjustments", "Adjustments"),
    ("expired", "Expired"),
    ("usage", "Usage"),
    ("refunds", "Refunds"),
]


# The badge a top-up's latest self-service refund wears, by its status.
REFUND_BADGES = {
    "refunding": "warning",
    "refunded": "ok",
    "failed": "error",
    "canceled": "off",
}


@dataclass(frozen=True)
class HistoryRow:
    created_at: datetime
    is_daily_usage: bool
    amount: str
    is_credit: bool
    type: str
    method: str
    description: str
    invoice_url: str | None = None
    # A top-up's row: "Request refund" while it may be refunded here, and how
    # its latest self-service refund stands.
    refund_url: str | None = None
    refund_status: str = ""
    refund_status_label: str = ""
    # An AI insurance payout's row: the covered requests behind it.
    covered_url: str | None = None

    @property
    def refund_badge(self) -> str:
        return REFUND_BADGES.get(self.refund_status, "off")

    @classmethod
    def of(
        cls,
        tx: Transaction,
        *,
        invoice_id: int | None = None,
        refund: TopUpRefundState | None = None,
    ) -> HistoryRow:
        usage = tx.kind == EntryKind.USAGE
        if usage:
            requests = "request" if tx.count == 1 else "requests"
            description = f"{tx.count:,} API {requests}"
        else:
            description = tx.description
        insured = (
            tx.kind == EntryKind.COMPENSATION and tx.method_label == "AI insurance"
        )
        return cls(
            created_at=tx.created_at,
            is_daily_usage=usage,
            amount=usd(tx.amount_nanos, precise=usage),
            is_credit=tx.amount_nanos > 0,
            # AI insurance's compensations read as the program that paid them.
            type="Insurance" if insured else tx.kind_label,
            # "API usage" / "API usage" says nothing twice.
            method="" if tx.method_label == tx.kind_label else tx.method_label,
            description=description,
            invoice_url=reverse("invoices:pdf", args=[invoice_id])
            if invoice_id is not None
            else None,
            refund_url=reverse("console:topup-refund", args=[refund.topup_id])
            if refund is not None and refund.refundable
            else None,
            refund_status=refund.status if refund else "",
            refund_status_label=refund.status_label if refund else "",
            covered_url=f"{reverse('console:insurance')}?entry={tx.id}"
            if insured
            else None,
        )


@account_required
def pay_as_you_go(request, account):
    balance = balance_get(account=account)
    breakdown = breakdown_get(account=account)
    page = Paginator(transactions_list(account=account), HISTORY_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    # The invoices of the page's top-up rows, in one query.
    invoice_ids = topup_invoice_ids(account=account, rows=page.object_list)
    refunds = topup_refund_states(account=account, rows=page.object_list)
    context = {
        "nav": "payg",
        "balance": {
            "total": usd(balance.total_nanos),
            "topup": usd(balance.topup_nanos),
            "bonus": usd(balance.bonus_nanos),
            "held": usd(balance.held_nanos) if balance.held_nanos else None,
            "available": usd(balance.available_nanos),
        },
        "breakdown": [
            {
                "key": key.replace("_", "-"),
                "label": label,
                "amount": usd(breakdown[key], precise=key == "usage"),
                "negative": breakdown[key] < 0,
            }
            for key, label in BREAKDOWN_LABELS
        ],
        "breakdown_total": usd(breakdown["total"]),
        "page": page,
        "rows": [
            HistoryRow.of(
                tx, invoice_id=invoice_ids.get(tx.id), refund=refunds.get(tx.id)
            )
            for tx in page.object_list
        ],
    }
    return render(request, "console/pay_as_you_go.html", context)
