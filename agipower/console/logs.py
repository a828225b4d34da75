"""The console's Logs pages: the account's request logs (/console/logs) with
filters, newest first by cursor, and one request's details
(/console/logs/<id>).

The filters are the query parameters of ``GET /api/v1/requests`` and of its
CSV (``proxy.filters``), so the page's URL, the API and the download select
the same rows; the rows, the count and the cursors are the proxy's selectors'.
At the top floor because a row names its key and the detail shows the pool
split of the charge.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from rest_framework.exceptions import ValidationError

from accounts.access import account_required
from accounts.models import Account
from agipower.console.logs_bodies import bodies_view
from apikeys.selectors import keys_for_account
from insurance.selectors import request_cover
from money import format_usd
from proxy.bodies import request_bodies_get
from proxy.filters import log_filters_from
from proxy.models import RequestLog
from proxy.selectors import (
    generation_ms,
    log_price,
    request_log_get,
    request_logs_count,
    request_logs_page,
    throughput,
)

LOGS_PAGE_SIZE = 50
# The query parameters of the filters, in the form's order.
FILTERS = ("from", "to", "key", "model", "provider", "status", "finish_reason")
SEARCH = "request_id"
# Finish reasons offered as suggestions (any other may be typed).
FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter", "function_call")


def cost(nanos: int) -> str:
    # A request costs fractions of a cent: whole cents would read $0.00.
    return format_usd(nanos, places=6)


@dataclass(frozen=True)
class LogRow:
    log: RequestLog
    cost: str
    ok: bool
    throughput: float | None

    @classmethod
    def of(cls, log: RequestLog) -> LogRow:
        return cls(
            log=log,
            cost=cost(log.cost_nanos),
            ok=log.status < 400,
            throughput=throughput(log),
        )


def _error_messages(exc: ValidationError) -> dict[str, list[str]]:
    detail = exc.detail if isinstance(exc.detail, dict) else {"": exc.detail}
    return {
        name: [str(message) for message in messages]
        if isinstance(messages, list)
        else [str(messages)]
        for name, messages in detail.items()
    }


def _query(params, *, without: tuple[str, ...] = ()) -> str:
    """The filters of ``params`` as a query string, empty values left out."""
    pairs = [
        (name, value)
        for name in (*FILTERS, SEARCH)
        if name not in without
        for value in params.getlist(name)
        if value.strip()
    ]
    return urlencode(pairs)


@account_required
def log_list(request, account: Account):
    params = request.GET
    errors: dict[str, list[str]] = {}
    page = None
    total = None
    try:
        filters = log_filters_from(params)
    except ValidationError as exc:
        errors = _error_messages(exc)
    else:
        try:
            page = request_logs_page(
                account=account,
                filters=filters,
                cursor=params.get("cursor") or None,
                limit=LOGS_PAGE_SIZE,
            )
        except ValidationError as exc:
            errors = _error_messages(exc)
        else:
            total = request_logs_count(account=account, filters=filters)

    keys = list(keys_for_account(account=account))
    chosen = set(params.getlist("key"))
    chosen_keys = [key for key in keys if str(key.pk) in chosen]
    query = _query(params)
    context = {
        "nav": "logs",
        "values": {name: params.get(name, "") for name in (*FILTERS, SEARCH)},
        "errors": errors,
        "keys": [{"key": key, "checked": str(key.pk) in chosen} for key in keys],
        "keys_summary": (
            "All keys"
            if not chosen
            else chosen_keys[0].name
            if len(chosen) == 1 and chosen_keys
            else f"{len(chosen)} keys"
        ),
        "finish_reasons": FINISH_REASONS,
        "filtered": bool(query),
        "page": page,
        "rows": [LogRow.of(log) for log in page.rows] if page else [],
        "total": total,
        "query": query,
        "csv_url": reverse("api-requests-csv") + (f"?{query}" if query else ""),
    }
    return render(request, "console/logs.html", context, status=400 if errors else 200)


@account_required
def log_detail(request, account: Account, log_id: uuid.UUID):
    try:
        log = request_log_get(account=account, log_id=log_id)
    except RequestLog.DoesNotExist:
        raise Http404("No such request") from None
    price = log_price(log=log)
    bodies = request_bodies_get(account=account, log=log)
    insurance = request_cover(
        account=account,
        request_id=log.id,
        created_at=log.created_at,
        cost_nanos=log.cost_nanos,
    )
    context = {
        "nav": "logs",
        "log": log,
        "ok": log.status < 400,
        "cost": cost(log.cost_nanos),
        # Prompt tokens include the cached and cache-write ones, completion
        # tokens the reasoning ones (OpenAI's convention): the parts are
        # indented under their whole.
        "tokens": [
            ("Prompt", log.prompt_tokens, False),
            ("Cached read", log.cached_tokens, True),
            ("Cache write", log.cache_write_tokens, True),
            ("Completion", log.completion_tokens, False),
            ("Reasoning", log.reasoning_tokens, True),
        ],
        "costs": [
            ("Input", cost(log.input_cost_nanos)),
            ("Cached read", cost(log.cached_cost_nanos)),
            ("Cache write", cost(log.cache_write_cost_nanos)),
            ("Output", cost(log.output_cost_nanos)),
        ],
        # Bonus credits are spent first, then top-up credits.
        "pools": [
            ("Bonus & compensation credits", cost(log.cost_bonus_nanos)),
            ("Top-up credits", cost(log.cost_topup_nanos)),
        ],
        "generation_ms": generation_ms(log),
        "throughput": throughput(log),
        "price": price,
        "price_per_million": _price_per_million(price) if price else None,
        "bodies": bodies_view(bodies) if bodies else None,
        "insurance": insurance,
        "insurance_paid": cost(insurance.payout.amount_nanos)
        if insurance.payout
        else None,
    }
    return render(request, "console/logs_detail.html", context)


def _price_per_million(price) -> list[tuple[str, str]]:
    return [
        ("Input", format_usd(price.input_nanos, places=_places(price.input_nanos))),
        (
            "Cached input",
            format_usd(
                price.cached_input_nanos, places=_places(price.cached_input_nanos)
            ),
        ),
        (
            "Cache write",
            format_usd(
                price.cache_write_nanos, places=_places(price.cache_write_nanos)
            ),
        ),
        ("Output", format_usd(price.output_nanos, places=_places(price.output_nanos))),
    ]


def _places(nanos: int) -> int:
    """Enough decimal places to show a price per 1M tokens exactly ($0.075)."""
    places = 9
    while places > 2 and nanos % 10 ** (9 - places + 1) == 0:
        places -= 1
    return places
