"""REST: API keys and request logs (/api/v1/keys, /api/v1/requests)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from accounts.models import Account
from accounts.selectors import account_for_user
from accounts.validators import (
    plain_text,
    unsafe_character,
    unsafe_character_message,
)
from apikeys.models import ApiKey, KeyKind, KeyStatus, LimitReset
from apikeys.selectors import (
    key_for_account,
    keys_for_account,
    request_logs_for_account,
)
from apikeys.services import NAME_MAX, key_create, key_delete, key_update
from money.fields import UsdAmountField, UsdField


def _choice_error(choices) -> dict[str, str]:
    return {
        "invalid_choice": f'"{{input}}" is not one of: {", ".join(choices.values)}.'
    }


def _limit_field(**kwargs) -> UsdAmountField:
    return UsdAmountField(
        min_nanos=1,
        required=False,
        allow_null=True,
        error_messages={
            "min_value": "Must be more than zero (send null for no limit)."
        },
        **kwargs,
    )


class KeySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField(
        help_text="Display prefix, e.g. sk-ap-v1-AbC…wxyz; it cannot call anything"
    )
    status = serializers.ChoiceField(choices=KeyStatus.choices)
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    used = UsdField(source="used_nanos", help_text="Charged to this key, all time")
    limit = UsdField(
        source="limit_nanos",
        allow_null=True,
        help_text="Credit limit per period, or null for none",
    )
    limit_reset = serializers.ChoiceField(choices=LimitReset.choices)


class CreatedKeySerializer(KeySerializer):
    key = serializers.CharField(
        help_text="The full key. Shown in this answer only: it is not stored."
    )


class _LimitRules:
    def validate(self, data):
        kind = data.get("kind") or getattr(self.context.get("api_key"), "kind", None)
        if kind == KeyKind.MANAGEMENT and data.get("limit") is not None:
            raise ValidationError({"limit": ["Management keys have no credit limit."]})
        return data


class KeyCreateSerializer(_LimitRules, serializers.Serializer):
    name = serializers.CharField(max_length=NAME_MAX, validators=[plain_text])
    kind = serializers.ChoiceField(
        choices=KeyKind.choices,
        default=KeyKind.PAYG,
        error_messages=_choice_error(KeyKind),
        help_text="payg keys call /v1; management keys call /api/v1",
    )
    limit = _limit_field(help_text="Credit limit per period")
    limit_reset = serializers.ChoiceField(
        choices=LimitReset.choices,
        default=LimitReset.NONE,
        error_messages=_choice_error(LimitReset),
        help_text="When the limit starts again (UTC)",
    )


class KeyUpdateSerializer(_LimitRules, serializers.Serializer):
    name = serializers.CharField(
        max_length=NAME_MAX, required=False, validators=[plain_text]
    )
    status = serializers.ChoiceField(
        choices=KeyStatus.choices,
        required=False,
        error_messages=_choice_error(KeyStatus),
    )
    limit = _limit_field(help_text="null removes the limit")
    limit_reset = serializers.ChoiceField(
        choices=LimitReset.choices,
        required=False,
        error_messages=_choice_error(LimitReset),
    )


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


def _account(request) -> Account:
    return account_for_user(request.user)


# The longest model id the request logs hold (proxy's RequestLog.model).
MODEL_MAX = 100

KEY_ID = OpenApiParameter("key_id", OpenApiTypes.INT, OpenApiParameter.PATH)


class KeyListView(GenericAPIView):
    """The account's API keys, newest first; POST creates one and answers with
    the full key, the only time it is ever shown."""

    serializer_class = KeySerializer

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "kind",
                OpenApiTypes.STR,
                enum=KeyKind.values,
                default=KeyKind.PAYG,
                description="Which keys to list",
            )
        ],
        responses=KeySerializer(many=True),
    )
    def get(self, request):
        kind = request.query_params.get("kind") or KeyKind.PAYG
        if kind not in KeyKind.values:
            raise ValidationError(
                {"kind": [f'"{kind}" is not one of: {", ".join(KeyKind.values)}.']}
            )
        keys = keys_for_account(account=_account(request), kind=kind)
        page = self.paginate_queryset(keys)
        return self.get_paginated_response(KeySerializer(page, many=True).data)

    @extend_schema(request=KeyCreateSerializer, responses={201: CreatedKeySerializer})
    def post(self, request):
        account = _account(request)
        form = KeyCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        created = key_create(
            account=account,
            name=data["name"],
            kind=data["kind"],
            limit_nanos=data.get("limit"),
            limit_reset=data["limit_reset"],
        )
        body = {**KeySerializer(created.api_key).data, "key": created.secret}
        return Response(
            body,
            status=status.HTTP_201_CREATED,
            # The secret must not linger in a cache on the way.
            headers={"Cache-Control": "no-store"},
        )


@extend_schema(parameters=[KEY_ID])
class KeyDetailView(GenericAPIView):
    """A key of either kind. Anyone else's key, or a deleted one, is a 404."""

    serializer_class = KeySerializer

    def get_object(self) -> ApiKey:
        try:
            return key_for_account(
                account=_account(self.request), key_id=self.kwargs["key_id"], kind=None
            )
        except ApiKey.DoesNotExist:
            raise NotFound("No such API key.") from None

    @extend_schema(responses=KeySerializer)
    def get(self, request, key_id):
        return Response(KeySerializer(self.get_object()).data)

    @extend_schema(request=KeyUpdateSerializer, responses=KeySerializer)
    def patch(self, request, key_id):
        api_key = self.get_object()
        form = KeyUpdateSerializer(data=request.data, context={"api_key": api_key})
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        if "limit" in data:
            data["limit_nanos"] = data.pop("limit")
        try:
            api_key = key_update(api_key=api_key, **data)
        except ApiKey.DoesNotExist:  # deleted meanwhile
            raise NotFound("No such API key.") from None
        return Response(KeySerializer(api_key).data)

    @extend_schema(responses={204: OpenApiResponse(description="Deleted")})
    def delete(self, request, key_id):
        key_delete(api_key=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


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


class RequestLogListView(GenericAPIView):
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
            account=_account(request),
            key_id=_key_id(params),
            model=_model(params),
            since=since,
            before=before,
        )
        page = self.paginate_queryset(logs)
        return self.get_paginated_response(RequestLogSerializer(page, many=True).data)
