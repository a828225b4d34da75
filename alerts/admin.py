"""Operators see the alerts sent and each account's alert settings; both are
changed only by the customer and the scan."""

from __future__ import annotations

from django.contrib import admin

from alerts.models import Alert, AlertSettings
from billing.ledger.admin import ReadOnlyAdmin, usd_column


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "account",
        "kind",
        "api_key",
        usd_column("balance_nanos", "balance"),
        usd_column("threshold_nanos", "threshold"),
        usd_column("key_used_nanos", "key used"),
        usd_column("key_limit_nanos", "key limit"),
        "emailed_at",
    )
    list_filter = ("kind",)
    list_select_related = ("account__owner", "api_key")
    search_fields = ("account__owner__email",)
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")


@admin.register(AlertSettings)
class AlertSettingsAdmin(ReadOnlyAdmin):
    list_display = (
        "account",
        "low_balance_enabled",
        usd_column("low_balance_threshold_nanos", "threshold"),
        "key_usage_enabled",
        "key_usage_percent",
        "updated_at",
    )
    list_select_related = ("account__owner",)
    search_fields = ("account__owner__email",)
