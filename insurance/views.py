"""The console's AI Insurance page (/console/insurance): what insurance paid
back (total, count, average; by rule and by model), the covered requests
with their payout, and the customer's claims with their outcome. Also the
claim form's target (/console/insurance/claim/<request id>), posted from a
request's page in Logs."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.access import account_required
from accounts.models import Account
from insurance.errors import InsuranceError
from insurance.models import CoverageRule
from insurance.selectors import (
    KIND_LABELS,
    claim_payout,
    claims_list,
    insurance_summary,
    payouts_list,
)
from insurance.services import claim_file
from money import format_usd, usd
from proxy.models import RequestLog

PAGE_SIZE = 50
CLAIMS_SHOWN = 50


def cost(nanos: int) -> str:
    # A request costs fractions of a cent: whole cents would read $0.00.
    return format_usd(nanos, places=6)


def _entry_id(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


@never_cache
@account_required
def insurance_page(request, account: Account):
    summary = insurance_summary(account=account)
    entry_id = _entry_id(request.GET.get("entry"))
    page = Paginator(
        payouts_list(account=account, entry_id=entry_id), PAGE_SIZE
    ).get_page(request.GET.get("page"))
    claims = list(claims_list(account=account)[:CLAIMS_SHOWN])
    context = {
        "nav": "insurance",
        "total": usd(summary.total_nanos, precise=True),
        "count": summary.count,
        "average": usd(summary.average_nanos, precise=True),
        "by_rule": [
            {"label": g.label, "count": g.count, "total": cost(g.total_nanos)}
            for g in summary.by_rule
        ],
        "by_model": [
            {"label": g.label, "count": g.count, "total": cost(g.total_nanos)}
            for g in summary.by_model
        ],
        "entry_id": entry_id,
        "page": page,
        "payouts": [
            {
                "payout": payout,
                "rule": KIND_LABELS.get(payout.kind, payout.kind),
                "cost": cost(payout.cost_nanos),
                "amount": cost(payout.amount_nanos),
            }
            for payout in page.object_list
        ],
        "claims": [
            {
                "claim": claim,
                "cost": cost(claim.cost_nanos),
                "paid": cost(paid.amount_nanos)
                if (paid := claim_payout(claim))
                else None,
            }
            for claim in claims
        ],
        "rules": [rule for rule in CoverageRule.objects.filter(model="", enabled=True)],
    }
    return render(request, "console/insurance.html", context)


@require_POST
@account_required
def claim_create(request, account: Account, log_id: uuid.UUID):
    try:
        claim_file(account=account, log_id=log_id, reason=request.POST.get("reason"))
    except RequestLog.DoesNotExist:
        raise Http404("No such request") from None
    except InsuranceError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, "Claim sent. An operator will review it; its outcome shows here."
        )
    return redirect("console:log", log_id=log_id)
