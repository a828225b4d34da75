"""The console's Alerts form."""

from __future__ import annotations

from django import forms

from alerts.models import (
    MAX_PERCENT,
    MAX_THRESHOLD_NANOS,
    MIN_PERCENT,
    MIN_THRESHOLD_NANOS,
)
from apikeys.forms import THOUSANDS
from money import MoneyError, format_usd, usd_to_nanos


class AlertSettingsForm(forms.Form):
    low_balance_enabled = forms.BooleanField(required=False)
    low_balance_threshold = forms.CharField(required=False, max_length=40)
    key_usage_enabled = forms.BooleanField(required=False)
    key_usage_percent = forms.CharField(required=False, max_length=10)

    def clean_low_balance_threshold(self) -> int | None:
        """Nanos; None (left empty) keeps the threshold as it is."""
        value = self.cleaned_data["low_balance_threshold"].strip().removeprefix("$")
        if not value:
            return None
        # "$1,000.50" as people write it; but "1,5" is refused, not read as 15.
        if THOUSANDS.fullmatch(value):
            value = value.replace(",", "")
        try:
            nanos = usd_to_nanos(value)
        except MoneyError as exc:
            raise forms.ValidationError(
                f"Enter an amount in USD, e.g. 3 or 12.50: {exc}."
            ) from None
        if not MIN_THRESHOLD_NANOS <= nanos <= MAX_THRESHOLD_NANOS:
            raise forms.ValidationError(
                f"Enter an amount from {format_usd(MIN_THRESHOLD_NANOS)} to "
                f"{format_usd(MAX_THRESHOLD_NANOS)}."
            )
        return nanos

    def clean_key_usage_percent(self) -> int | None:
        """A whole percent; None (left empty) keeps it as it is."""
        value = self.cleaned_data["key_usage_percent"].strip().removesuffix("%")
        if not value:
            return None
        if not (value.isascii() and value.isdigit()):
            raise forms.ValidationError(
                f"Enter a whole percent from {MIN_PERCENT} to {MAX_PERCENT}, e.g. 80."
            )
        percent = int(value)
        if not MIN_PERCENT <= percent <= MAX_PERCENT:
            raise forms.ValidationError(
                f"Enter a whole percent from {MIN_PERCENT} to {MAX_PERCENT}."
            )
        return percent

    def clean(self):
        data = super().clean()
        # An alert that is on needs its value; one that is off keeps it.
        if data.get("low_balance_enabled") and (
            "low_balance_threshold" in data and data["low_balance_threshold"] is None
        ):
            self.add_error(
                "low_balance_threshold",
                "Enter the balance to be alerted below, e.g. 3 or 12.50.",
            )
        if data.get("key_usage_enabled") and (
            "key_usage_percent" in data and data["key_usage_percent"] is None
        ):
            self.add_error("key_usage_percent", "Enter a percent, e.g. 80.")
        return data
