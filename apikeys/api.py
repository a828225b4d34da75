"""REST: API keys (/api/v1/keys). A key's request logs are read at
/api/v1/requests?key=<id>."""

from __future__ import annotations

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

from accounts.access import AccountRequired
from accounts.validators import plain_text
from apikeys.models import ApiKey, KeyKind, KeyStatus, LimitReset
from apikeys.selectors import key_for_account, keys_for_account
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


KEY_ID = OpenApiParameter("key_id", OpenApiTypes.INT, OpenApiParameter.PATH)


class KeyListView(AccountRequired, GenericAPIView):
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
        keys = keys_for_account(account=self.account, kind=kind)
        page = self.paginate_queryset(keys)
        return self.get_paginated_response(KeySerializer(page, many=True).data)

    @extend_schema(request=KeyCreateSerializer, responses={201: CreatedKeySerializer})
    def post(self, request):
        form = KeyCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        created = key_create(
            account=self.account,
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
class KeyDetailView(AccountRequired, GenericAPIView):
    """A key of either kind. Anyone else's key, or a deleted one, is a 404."""

    serializer_class = KeySerializer

    def get_object(self) -> ApiKey:
        try:
            return key_for_account(
                account=self.account, key_id=self.kwargs["key_id"], kind=None
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
            api_key = key_update(api_key=api_key, actor=request.user, **data)
        except ApiKey.DoesNotExist:  # deleted meanwhile
            raise NotFound("No such API key.") from None
        return Response(KeySerializer(api_key).data)

    @extend_schema(responses={204: OpenApiResponse(description="Deleted")})
    def delete(self, request, key_id):
        key_delete(api_key=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
