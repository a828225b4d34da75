"""REST: the account's ``/v1`` request logs (``GET /api/v1/requests``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView

from accounts.access import AccountRequired
from accounts.validators import unsafe_character, unsafe_character_message
from money.fields import UsdField
from proxy.models import RequestLog
from proxy.selectors import request_logs_for_account

# The longest model id the request logs hold.
MODEL_MAX = RequestLog._meta.get_field("model").max_length


class RequestLogSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    created_at = serializers.DateTimeField()
    key = serializers.IntegerField(source="api_key_id")
    model = serializers.CharField()
    provider = serializers.CharField()
    status = serializers.IntegerField(help_text="HTTP status answered")
    streamed = serializers.BooleanField()
    prompt_tokens = serializers.IntegerField()
    cached_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    reasoning_tokens = serializers.IntegerField()
    usage_estimated = serializers.BooleanField(
        help_text="Output counted by us after the client disconnected"
    )
    cost = UsdField(source="cost_nanos")
    cost_top_up = UsdField(source="cost_topup_nanos")
    cost_bonus = UsdField(source="cost_bonus_nanos")
    latency_ms = serializers.IntegerField()
    ttft_ms = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()


def _moment(params, name: str, *, end: bool) -> datetime | None:
    """``from``/``to`` as an aware UTC datetime. A date covers its whole day,
    so ``to=2026-01-31`` includes the 31st; both bounds are inclusive."""
    value = (params.get(name) or "").strip()
    if not value:
        return None
    try:
        day = parse_date(value)
        moment = None if day else parse_datetime(value)
        if day:
            start = datetime.combine(day, time.min, tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        if moment:
            if timezone.is_naive(moment):
                moment = moment.replace(tzinfo=UTC)
            return moment + timedelta(microseconds=1) if end else moment
    except (ValueError, OverflowError):
        pass
    raise ValidationError(
        {name: [f"{_shown(value)} is not an ISO 8601 date (2026-01-31) or date-time."]}
    )


def _key_id(params) -> int | None:
    value = (params.get("key") or "").strip()
    if not value:
        return None
    # ASCII digits only: str.isdigit() also says yes to "²", which int() refuses.
    if not re.fullmatch(r"[0-9]{1,18}", value) or int(value) == 0:
        raise ValidationError({"key": [f"{_shown(value)} is not a key id."]})
    return int(value)


def _model(params) -> str | None:
    value = (params.get("model") or "").strip()
    if not value:
        return None
    if len(value) > MODEL_MAX:
        raise ValidationError({"model": [f"At most {MODEL_MAX} characters."]})
    if (char := unsafe_character(value)) is not None:
        raise ValidationError({"model": [unsafe_character_message(char)]})
    return value


def _shown(value: str) -> str:
    """A query parameter in an error message: quoted, cut short."""
    return f'"{value}"' if len(value) <= 40 else f'"{value[:37]}…"'


class RequestLogListView(AccountRequired, GenericAPIView):
    """The account's /v1 request logs, newest first. Costs are USD strings,
    split by the pool they were paid from."""

    serializer_class = RequestLogSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("key", OpenApiTypes.INT, description="A key id"),
            OpenApiParameter(
                "model", OpenApiTypes.STR, description="e.g. openai/gpt-5"
            ),
            OpenApiParameter(
                "from",
                OpenApiTypes.STR,
                description="ISO 8601 date or date-time (UTC unless an offset is "
                "given), inclusive",
            ),
            OpenApiParameter(
                "to",
                OpenApiTypes.STR,
                description="ISO 8601 date or date-time, inclusive: a date "
                "includes its whole day",
            ),
        ],
        responses=RequestLogSerializer(many=True),
    )
    def get(self, request):
        params = request.query_params
        since = _moment(params, "from", end=False)
        before = _moment(params, "to", end=True)
        if since and before and before <= since:
            raise ValidationError({"to": ["Must not be before from."]})
        logs = request_logs_for_account(
            account=self.account,
            key_id=_key_id(params),
            model=_model(params),
            since=since,
            before=before,
        )
        page = self.paginate_queryset(logs)
        return self.get_paginated_response(RequestLogSerializer(page, many=True).data)
