"""REST: the account's ``/v1`` request logs: ``GET /api/v1/requests`` (cursor
pages), ``GET /api/v1/requests/{id}`` (one request's detail, by the
X-Request-Id its answer carried) and ``GET /api/v1/requests.csv`` (the
export)."""

from __future__ import annotations

import re
import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from accounts.access import AccountRequired
from money.csv_stream import CsvNegotiation, csv_response, range_filename
from money.fields import UsdField
from proxy.bodies import request_bodies_get
from proxy.exports import request_logs_csv as request_logs_csv_chunks
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

LIMIT_DEFAULT = 50
LIMIT_MAX = 200

STATUS_FIELD = {"type": "string", "enum": ["ok", "error"]}


class RequestLogSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="The X-Request-Id of the request's answer")
    created_at = serializers.DateTimeField()
    key = serializers.IntegerField(source="api_key_id")
    key_name = serializers.CharField()
    model = serializers.CharField()
    provider = serializers.CharField()
    status = serializers.SerializerMethodField(
        help_text="ok: answered below 400; error: 400 or above"
    )
    http_status = serializers.IntegerField(source="status")
    finish_reason = serializers.CharField(
        help_text="Why the answer ended (stop, length, tool_calls...); empty if "
        "upstream did not say"
    )
    streamed = serializers.BooleanField()
    prompt_tokens = serializers.IntegerField(
        help_text="Input tokens, cached and cache-write ones included"
    )
    cached_tokens = serializers.IntegerField()
    cache_write_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField(
        help_text="Output tokens, reasoning ones included"
    )
    reasoning_tokens = serializers.IntegerField()
    usage_estimated = serializers.BooleanField(
        help_text="Output counted by us after the client disconnected"
    )
    cancelled = serializers.BooleanField(help_text="The client went away first")
    cost = UsdField(source="cost_nanos")
    cost_top_up = UsdField(source="cost_topup_nanos")
    cost_bonus = UsdField(source="cost_bonus_nanos")
    latency_ms = serializers.IntegerField()
    ttft_ms = serializers.IntegerField(
        allow_null=True, help_text="Time to the first token of a stream"
    )
    throughput = serializers.SerializerMethodField(
        help_text="Output tokens per second of generation (after the first "
        "token); null when it took no time"
    )
    error = serializers.CharField()

    @extend_schema_field(STATUS_FIELD)
    def get_status(self, log) -> str:
        return "error" if log.status >= 400 else "ok"

    @extend_schema_field({"type": "number", "nullable": True})
    def get_throughput(self, log) -> float | None:
        return throughput(log)


class RequestLogPageSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Every log the filters select")
    next = serializers.URLField(
        allow_null=True, help_text="The page of older logs (cursor)"
    )
    previous = serializers.URLField(
        allow_null=True, help_text="The page of newer logs (cursor)"
    )
    results = RequestLogSerializer(many=True)


class TokensSerializer(serializers.Serializer):
    prompt = serializers.IntegerField(
        source="prompt_tokens", help_text="Every input token"
    )
    uncached_prompt = serializers.SerializerMethodField(
        help_text="Input tokens billed at the input price"
    )
    cached_read = serializers.IntegerField(source="cached_tokens")
    cache_write = serializers.IntegerField(source="cache_write_tokens")
    completion = serializers.IntegerField(
        source="completion_tokens", help_text="Every output token"
    )
    reasoning = serializers.IntegerField(source="reasoning_tokens")

    def get_uncached_prompt(self, log) -> int:
        return max(log.prompt_tokens - log.cached_tokens - log.cache_write_tokens, 0)


class CostByKindSerializer(serializers.Serializer):
    input = UsdField(source="input_cost_nanos")
    cached = UsdField(source="cached_cost_nanos")
    cache_write = UsdField(source="cache_write_cost_nanos")
    output = UsdField(source="output_cost_nanos")


class PriceVersionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    model = serializers.CharField(source="model_id")
    effective_from = serializers.DateTimeField()
    input = UsdField(source="input_nanos", help_text="USD per 1M tokens")
    cached_input = UsdField(source="cached_input_nanos", help_text="USD per 1M tokens")
    cache_write = UsdField(source="cache_write_nanos", help_text="USD per 1M tokens")
    output = UsdField(source="output_nanos", help_text="USD per 1M tokens")


class BodiesSerializer(serializers.Serializer):
    request = serializers.JSONField(help_text="The request's JSON (text if cut)")
    response = serializers.JSONField(
        help_text="The answer's JSON; for a stream, the message(s) its events make"
    )
    events = serializers.CharField(
        allow_null=True, help_text="A stream's events as they were sent"
    )
    truncated = serializers.BooleanField(help_text="A body was longer than is kept")


class RequestLogDetailSerializer(RequestLogSerializer):
    endpoint = serializers.CharField()
    upstream_model = serializers.CharField(help_text="The model's name upstream")
    tokens = TokensSerializer(source="*")
    cost_by_kind = CostByKindSerializer(
        source="*", help_text="What each kind of token cost; they sum to cost"
    )
    generation_ms = serializers.SerializerMethodField(
        help_text="From the first token to the end"
    )
    price = PriceVersionSerializer(
        source="price_version",
        allow_null=True,
        help_text="The price version the request was billed at",
    )
    over_reported = serializers.BooleanField(
        help_text="Its usage cost more than its hold, which is what it was charged"
    )
    uncapped_cost = UsdField(
        source="uncapped_cost_nanos", help_text="What its usage cost before that cap"
    )
    bodies = BodiesSerializer(
        allow_null=True,
        help_text="Only for an account that keeps request and response bodies",
    )

    def get_generation_ms(self, log) -> int:
        return generation_ms(log)


FILTER_PARAMETERS = [
    OpenApiParameter(
        "from",
        OpenApiTypes.STR,
        description="ISO 8601 date or date-time (UTC unless an offset is given), "
        "inclusive",
    ),
    OpenApiParameter(
        "to",
        OpenApiTypes.STR,
        description="ISO 8601 date or date-time, inclusive: a date includes its "
        "whole day",
    ),
    OpenApiParameter(
        "key",
        OpenApiTypes.STR,
        description="A key id; several may be given (key=1&key=2, or key=1,2)",
    ),
    OpenApiParameter("model", OpenApiTypes.STR, description="e.g. openai/gpt-5"),
    OpenApiParameter("provider", OpenApiTypes.STR, description="e.g. openai"),
    OpenApiParameter(
        "status",
        OpenApiTypes.STR,
        enum=["ok", "error"],
        description="ok: answered below 400; error: 400 or above",
    ),
    OpenApiParameter(
        "finish_reason", OpenApiTypes.STR, description="e.g. stop, length"
    ),
    OpenApiParameter(
        "request_id",
        OpenApiTypes.UUID,
        description="The X-Request-Id of an answer",
    ),
]


def _limit(params) -> int:
    value = (params.get("limit") or "").strip()
    if not value:
        return LIMIT_DEFAULT
    digits = value.lstrip("0")
    if not re.fullmatch(r"[0-9]+", value) or not digits:
        raise ValidationError({"limit": [f"A number from 1 to {LIMIT_MAX}."]})
    # A larger page is clamped to the largest, as the other lists do; int() is
    # never asked to read thousands of digits (it refuses them).
    return LIMIT_MAX if len(digits) > 4 else min(int(digits), LIMIT_MAX)


class RequestLogListView(AccountRequired, GenericAPIView):
    """The account's /v1 request logs, newest first, a page at a time: follow
    ``next`` for older logs and ``previous`` for newer ones (cursors, so a
    deep page is as quick as the first and logs arriving meanwhile shift
    nothing). Costs are USD strings, split by the pool they were paid from."""

    serializer_class = RequestLogSerializer
    pagination_class = None

    @extend_schema(
        parameters=[
            *FILTER_PARAMETERS,
            OpenApiParameter(
                "limit",
                OpenApiTypes.INT,
                description=f"Logs per page, 1 to {LIMIT_MAX} (a larger one is "
                f"clamped); {LIMIT_DEFAULT} by default",
            ),
            OpenApiParameter(
                "cursor",
                OpenApiTypes.STR,
                description="From a next or previous link",
            ),
        ],
        responses=RequestLogPageSerializer,
        operation_id="requests_list",
    )
    def get(self, request):
        params = request.query_params
        filters = log_filters_from(params)
        limit = _limit(params)
        page = request_logs_page(
            account=self.account,
            filters=filters,
            cursor=params.get("cursor") or None,
            limit=limit,
        )
        count = request_logs_count(account=self.account, filters=filters)
        here = remove_query_param(request.build_absolute_uri(), "offset")
        return Response(
            {
                "count": count,
                "next": _link(here, page.next_cursor),
                "previous": _link(here, page.previous_cursor),
                "results": RequestLogSerializer(page.rows, many=True).data,
            }
        )


def _link(url: str, cursor: str | None) -> str | None:
    return replace_query_param(url, "cursor", cursor) if cursor else None


class RequestLogDetailView(AccountRequired, GenericAPIView):
    """One request: its tokens and cost by kind, the pools that paid it, its
    timings, the price version it was billed at, its error if any, and its
    bodies for an account that keeps them. Found by the X-Request-Id its
    answer carried; another account's is not found."""

    serializer_class = RequestLogDetailSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "log_id",
                OpenApiTypes.UUID,
                OpenApiParameter.PATH,
                description="The request's id (its X-Request-Id)",
            )
        ],
        responses=RequestLogDetailSerializer,
        operation_id="requests_retrieve",
    )
    def get(self, request, log_id: str):
        try:
            log = request_log_get(account=self.account, log_id=uuid.UUID(log_id))
        except (ValueError, RequestLog.DoesNotExist):
            raise NotFound("No such request.") from None
        log.price_version = log_price(log=log)
        bodies = request_bodies_get(account=self.account, log=log)
        log.bodies = bodies.as_dict() if bodies is not None else None
        return Response(RequestLogDetailSerializer(log).data)


class RequestLogCsvView(AccountRequired, GenericAPIView):
    """The logs the filters select as CSV, newest first, streamed: no page,
    no limit. Amounts are exact USD decimals."""

    content_negotiation_class = CsvNegotiation
    pagination_class = None

    @extend_schema(
        parameters=FILTER_PARAMETERS,
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="A header row, then a row per request log",
            )
        },
        operation_id="requests_csv",
    )
    def get(self, request):
        filters = log_filters_from(request.query_params)
        chunks = request_logs_csv_chunks(account=self.account, filters=filters)
        return csv_response(
            request,
            chunks,
            filename=range_filename("requests", filters.since, filters.before),
        )
