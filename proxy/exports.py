"""The CSV export of an account's request logs (``GET /api/v1/requests.csv``,
the console's Logs page): the columns, and the rows the filters select, each
cell written by PostgreSQL; streamed by ``money.csv_stream``.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import CharField, DecimalField, F, Func, QuerySet

from accounts.models import Account
from money.csv_stream import csv_copy, safe_text_sql, usd_sql, utc_sql
from proxy.filters import LogFilters
from proxy.selectors import request_logs_matching

REQUEST_LOG_COLUMNS = (
    "id",
    "created_at",
    "key_id",
    "key_name",
    "model",
    "provider",
    "status",
    "http_status",
    "finish_reason",
    "streamed",
    "prompt_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cost_usd",
    "input_cost_usd",
    "cached_cost_usd",
    "cache_write_cost_usd",
    "output_cost_usd",
    "cost_bonus_usd",
    "cost_top_up_usd",
    "latency_ms",
    "ttft_ms",
    "usage_estimated",
    "cancelled",
    "error",
)


def _sql(template_of, field: str, output_field) -> Func:
    # The template's one placeholder is the column; none of them holds a "%".
    return Func(
        F(field),
        template=template_of("%(expressions)s"),
        output_field=output_field,
    )


def _usd(field: str) -> Func:
    return _sql(usd_sql, field, DecimalField())


def _text(field: str) -> Func:
    return _sql(safe_text_sql, field, CharField())


def _flag(field: str) -> Func:
    return _sql(
        lambda e: f"CASE WHEN {e} THEN 'true' ELSE 'false' END", field, CharField()
    )


# --- request logs ---------------------------------------------------------------


def request_logs_csv_rows(*, account: Account, filters: LogFilters) -> QuerySet:
    """The export's rows, newest first, each cell as REQUEST_LOG_COLUMNS
    names, written by PostgreSQL."""
    columns = {
        "id": F("id"),
        "created_at": _sql(utc_sql, "created_at", CharField()),
        "key_id": F("api_key_id"),
        "key_name": _text("api_key__name"),
        "model": _text("model"),
        "provider": _text("provider"),
        "status": _sql(
            lambda e: f"CASE WHEN {e} >= 400 THEN 'error' ELSE 'ok' END",
            "status",
            CharField(),
        ),
        "http_status": F("status"),
        "finish_reason": _text("finish_reason"),
        "streamed": _flag("streamed"),
        "prompt_tokens": F("prompt_tokens"),
        "cached_tokens": F("cached_tokens"),
        "cache_write_tokens": F("cache_write_tokens"),
        "completion_tokens": F("completion_tokens"),
        "reasoning_tokens": F("reasoning_tokens"),
        "cost_usd": _usd("cost_nanos"),
        "input_cost_usd": _usd("input_cost_nanos"),
        "cached_cost_usd": _usd("cached_cost_nanos"),
        "cache_write_cost_usd": _usd("cache_write_cost_nanos"),
        "output_cost_usd": _usd("output_cost_nanos"),
        "cost_bonus_usd": _usd("cost_bonus_nanos"),
        "cost_top_up_usd": _usd("cost_topup_nanos"),
        "latency_ms": F("latency_ms"),
        "ttft_ms": F("ttft_ms"),
        "usage_estimated": _flag("usage_estimated"),
        "cancelled": _flag("cancelled"),
        "error": _text("error"),
    }
    # Aliases of their own (an annotation may not take a field's name); the
    # CSV's header is written apart, in the same order.
    aliases = {f"c{n:02}": expression for n, expression in enumerate(columns.values())}
    return (
        request_logs_matching(account=account, filters=filters)
        .annotate(**aliases)
        .values_list(*aliases)
    )


def request_logs_csv(*, account: Account, filters: LogFilters) -> Iterator[bytes]:
    """The export of the logs ``filters`` select, in chunks of CSV."""
    sql, params = request_logs_csv_rows(
        account=account, filters=filters
    ).query.sql_with_params()
    return csv_copy(sql=sql, params=params, header=REQUEST_LOG_COLUMNS)
