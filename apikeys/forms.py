"""Console forms of the API Keys pages."""

from __future__ import annotations

import re

from django import forms

from accounts.validators import plain_text
from apikeys.models import KeyKind, LimitReset
from apikeys.services import NAME_MAX
from money import MoneyError, usd_to_nanos

# Commas that group thousands: 1,000 or 12,345,678.90.
THOUSANDS = re.compile(r"[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?")


def _name_field() -> forms.CharField:
    return forms.CharField(
        label="Name",
        max_length=NAME_MAX,
        validators=[plain_text],
        widget=forms.TextInput(
            attrs={"placeholder": "e.g. production-app", "autocomplete": "off"}
        ),
        help_text="Name keys by project or environment to tell their costs apart.",
    )


class KeyCreateForm(forms.Form):
    name = _name_field()
    kind = forms.ChoiceField(
        choices=KeyKind.choices,
        initial=KeyKind.PAYG,
        required=False,
        widget=forms.HiddenInput,
    )

    def clean_kind(self) -> str:
        return self.cleaned_data["kind"] or KeyKind.PAYG


class KeyEditForm(forms.Form):
    """Name, and for Pay As You Go keys an optional credit limit per period."""

    name = _name_field()
    limit = forms.CharField(
        label="Credit limit (USD)",
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "None"}),
        help_text="Requests stop with 402 once the key has spent this much in the "
        "period. Leave empty for no limit.",
    )
    limit_reset = forms.ChoiceField(
        label="Limit resets",
        choices=LimitReset.choices,
        initial=LimitReset.NONE,
        help_text="Periods are counted in UTC.",
    )

    def __init__(self, *args, kind: str = KeyKind.PAYG, **kwargs):
        super().__init__(*args, **kwargs)
        if kind == KeyKind.MANAGEMENT:
            # Management keys spend nothing, so a credit limit means nothing.
            del self.fields["limit"], self.fields["limit_reset"]

    def clean_limit(self) -> int | None:
        value = self.cleaned_data["limit"].strip().removeprefix("$")
        if not value:
            return None
        # "$1,000.50" as people write it; but "1,5" is refused, not read as 15.
        if THOUSANDS.fullmatch(value):
            value = value.replace(",", "")
        try:
            nanos = usd_to_nanos(value)
        except MoneyError as exc:
            raise forms.ValidationError(
                f"Enter an amount in USD, e.g. 25 or 12.50: {exc}."
            ) from None
        if nanos <= 0:
            raise forms.ValidationError(
                "Enter an amount above zero, or leave it empty for no limit."
            )
        return nanos
