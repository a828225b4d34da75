"""Writes of an account's alert settings."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from alerts.errors import AlertSettingsInvalid
from alerts.models import (
    MAX_PERCENT,
    MAX_THRESHOLD_NANOS,
    MIN_PERCENT,
    MIN_THRESHOLD_NANOS,
    AlertSettings,
    LowBalanceState,
)
from alerts.scan import journal_latest_id
from money import format_usd


def threshold_check(nanos: int) -> int:
    if isinstance(nanos, bool) or not isinstance(nanos, int):
        raise AlertSettingsInvalid("threshold", "must be an amount in USD")
    if not MIN_THRESHOLD_NANOS <= nanos <= MAX_THRESHOLD_NANOS:
        raise AlertSettingsInvalid(
            "threshold",
            f"must be from {format_usd(MIN_THRESHOLD_NANOS)} to "
            f"{format_usd(MAX_THRESHOLD_NANOS)}",
        )
    return nanos


def percent_check(percent: int) -> int:
    if isinstance(percent, bool) or not isinstance(percent, int):
        raise AlertSettingsInvalid("percent", "must be a whole number")
    if not MIN_PERCENT <= percent <= MAX_PERCENT:
        raise AlertSettingsInvalid(
            "percent", f"must be from {MIN_PERCENT} to {MAX_PERCENT}"
        )
    return percent


@transaction.atomic
def alert_settings_save(
    *,
    account: Account,
    low_balance_enabled: bool | None = None,
    low_balance_threshold_nanos: int | None = None,
    key_usage_enabled: bool | None = None,
    key_usage_percent: int | None = None,
) -> AlertSettings:
    """Change an account's alert settings; ``None`` keeps one as it is.

    A change of the low-balance alert (on, off, or its threshold) voids the
    falls below a threshold before it: they were judged by the old setting,
    and the customer who sets a threshold above the balance knows it already.
    The next fall below the new threshold alerts."""
    if low_balance_threshold_nanos is not None:
        threshold_check(low_balance_threshold_nanos)
    if key_usage_percent is not None:
        percent_check(key_usage_percent)
    row = AlertSettings.objects.select_for_update().get_or_create(account=account)[0]
    before = (row.low_balance_enabled, row.low_balance_threshold_nanos)
    if low_balance_enabled is not None:
        row.low_balance_enabled = bool(low_balance_enabled)
    if low_balance_threshold_nanos is not None:
        row.low_balance_threshold_nanos = low_balance_threshold_nanos
    if key_usage_enabled is not None:
        row.key_usage_enabled = bool(key_usage_enabled)
    if key_usage_percent is not None:
        row.key_usage_percent = key_usage_percent
    row.updated_at = timezone.now()
    row.save()
    if (row.low_balance_enabled, row.low_balance_threshold_nanos) != before:
        _low_balance_judged_now(account)
    return row


def _low_balance_judged_now(account: Account) -> None:
    latest = journal_latest_id()
    state = LowBalanceState.objects.select_for_update().get_or_create(account=account)[
        0
    ]
    if state.judged_entry_id < latest:
        state.judged_entry_id = latest
        state.save(update_fields=["judged_entry_id"])
