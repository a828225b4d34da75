"""REST: ``GET, PUT /api/v1/alerts``, the account's alert settings.

``{"low_balance": {"enabled", "threshold"}, "key_usage": {"enabled",
"percent"}}``, the threshold a USD decimal string. A PUT may leave out a part
or a field: what it leaves out keeps its value. A field it does not know is
refused, so a misspelt one is not silently ignored."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import AccountRequired
from alerts.errors import AlertSettingsInvalid
from alerts.models import (
    MAX_PERCENT,
    MAX_THRESHOLD_NANOS,
    MIN_PERCENT,
    MIN_THRESHOLD_NANOS,
    AlertSettings,
)
from alerts.selectors import alert_settings_get
from alerts.services import alert_settings_save
from money.fields import UsdAmountField


class _Strict(serializers.Serializer):
    """Refuses fields it does not know, naming them."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(str(name) for name in set(data) - set(self.fields))
            if unknown:
                raise ValidationError(dict.fromkeys(unknown, ["Unknown field."]))
        return super().to_internal_value(data)


class LowBalanceSerializer(_Strict):
    enabled = serializers.BooleanField(required=False)
    threshold = UsdAmountField(
        min_nanos=MIN_THRESHOLD_NANOS,
        max_nanos=MAX_THRESHOLD_NANOS,
        required=False,
        help_text="USD: an email when the balance falls below it",
    )


class KeyUsageSerializer(_Strict):
    enabled = serializers.BooleanField(required=False)
    percent = serializers.IntegerField(
        min_value=MIN_PERCENT,
        max_value=MAX_PERCENT,
        required=False,
        help_text="An email once per period when a key with a credit limit has "
        "used this share of it",
    )


class AlertSettingsSerializer(_Strict):
    low_balance = LowBalanceSerializer(required=False)
    key_usage = KeyUsageSerializer(required=False)


def _shown(row: AlertSettings) -> dict:
    return AlertSettingsSerializer(
        {
            "low_balance": {
                "enabled": row.low_balance_enabled,
                "threshold": row.low_balance_threshold_nanos,
            },
            "key_usage": {
                "enabled": row.key_usage_enabled,
                "percent": row.key_usage_percent,
            },
        }
    ).data


class AlertSettingsView(AccountRequired, APIView):
    @extend_schema(responses=AlertSettingsSerializer)
    def get(self, request):
        return Response(_shown(alert_settings_get(account=self.account)))

    @extend_schema(request=AlertSettingsSerializer, responses=AlertSettingsSerializer)
    def put(self, request):
        data = AlertSettingsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        low = data.validated_data.get("low_balance", {})
        keys = data.validated_data.get("key_usage", {})
        try:
            row = alert_settings_save(
                account=self.account,
                low_balance_enabled=low.get("enabled"),
                low_balance_threshold_nanos=low.get("threshold"),
                key_usage_enabled=keys.get("enabled"),
                key_usage_percent=keys.get("percent"),
            )
        except AlertSettingsInvalid as exc:
            part = "low_balance" if exc.field == "threshold" else "key_usage"
            raise ValidationError({part: {exc.field: [exc.message]}}) from None
        return Response(_shown(row))
