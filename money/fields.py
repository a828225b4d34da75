"""USD amounts in the REST API: exact decimal strings out, one grammar in."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from money import MoneyError, format_usd, nanos_to_usd, usd_to_nanos


@extend_schema_field(
    {"type": "string", "format": "decimal", "example": "120.000000000"}
)
class UsdField(serializers.Field):
    """Nano-USD out as an exact decimal string ("120.000000000")."""

    def to_representation(self, value: int) -> str:
        return nanos_to_usd(value)


AMOUNT_PATTERN = r"^[0-9]+(\.[0-9]{1,9})?$"


@extend_schema_field(
    {
        "type": "string",
        "format": "decimal",
        "pattern": AMOUNT_PATTERN,
        "example": "5.00",
        "description": "USD as a decimal string of the digits 0-9 with up to nine "
        "places; a whole JSON number is accepted too",
    }
)
class UsdAmountField(serializers.Field):
    """A USD amount in, parsed by ``money.usd_to_nanos`` (the one
    grammar of amounts), and the field's own bounds; out as ``UsdField``.

    A JSON number with a fraction (5.5) arrives as a float, which cannot carry
    money exactly, so it is refused rather than rounded. A whole JSON number
    (5) is exact and accepted."""

    default_error_messages = {
        "float": 'Send amounts as decimal strings, e.g. "5.50", not as JSON '
        "numbers with a fraction.",
        "invalid": 'Must be an amount in USD as a decimal string, e.g. "5.50".',
        "money": "{message}",
        "min_value": "Must be at least {limit}.",
        "max_value": "Must be at most {limit}.",
    }

    def __init__(self, *, min_nanos: int = 0, max_nanos: int | None = None, **kwargs):
        self.min_nanos = min_nanos
        self.max_nanos = max_nanos
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> int:
        if isinstance(data, float):
            self.fail("float")
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("invalid")
        try:
            nanos = usd_to_nanos(data)
        except MoneyError as exc:
            self.fail("money", message=str(exc))
        if nanos < self.min_nanos:
            self.fail(
                "min_value", limit=format_usd(self.min_nanos, _places(self.min_nanos))
            )
        if self.max_nanos is not None and nanos > self.max_nanos:
            self.fail(
                "max_value", limit=format_usd(self.max_nanos, _places(self.max_nanos))
            )
        return nanos

    def to_representation(self, value: int) -> str:
        return nanos_to_usd(value)


def _places(nanos: int) -> int:
    """Cents, or as many places as the bound needs ($0.000000001)."""
    return 2 if nanos % 10_000_000 == 0 else 9
