"""Money is an ``int`` of nano-USD everywhere; ``Decimal`` only at the edges."""

from __future__ import annotations

import re
from decimal import ROUND_FLOOR, Decimal

NANOS_PER_USD = 1_000_000_000
# The largest value a BigIntegerField (PostgreSQL bigint) holds.
MAX_NANOS = 2**63 - 1


class MoneyError(ValueError):
    """A value that cannot be an amount of money."""


# The one grammar of money typed by people and programs: ASCII digits, an
# optional point with one to nine more. No exponent ("1e3"), no other digits
# ("١٢"), no separators or signs but a leading minus where one is allowed.
_AMOUNT = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?", re.ASCII)
_MAX_WHOLE_DIGITS = len(str(MAX_NANOS // NANOS_PER_USD))


def usd_to_nanos(value: str | Decimal | int, *, signed: bool = False) -> int:
    """Parse a USD amount ("12.5", a whole int, or a Decimal) into exact nanos.

    Every amount that comes in (API fields, console and admin forms, commands,
    settings, the catalog) is parsed here. Strings must match
    ``-?[0-9]+(.[0-9]{1,9})?``, the minus only when ``signed`` (an adjustment
    may take credits back; nothing else is negative). Floats are refused: a
    float cannot carry an amount exactly. More than nine decimal places would
    need rounding, so they are refused too. The caller checks its field's own
    limits (a minimum top-up, a limit above zero).
    """
    if isinstance(value, bool | float):
        raise MoneyError(
            f"amount must be a decimal string, not a {type(value).__name__}"
        )
    if isinstance(value, int):
        text = _whole_text(value)
    elif isinstance(value, Decimal):
        text = _decimal_text(value)
    elif isinstance(value, str):
        text = value.strip(" \t\r\n")
    else:
        raise MoneyError(
            f"amount must be a decimal string, not a {type(value).__name__}"
        )
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise MoneyError(
            f"{_shown(value)} is not a decimal amount (digits 0-9 and an optional "
            'point, e.g. "12.50")'
        )
    minus, whole, fraction = match.groups()
    fraction = fraction or ""
    if len(fraction) > 9:
        raise MoneyError(f"{_shown(value)} has more than 9 decimal places")
    if minus and not signed:
        raise MoneyError(f"{_shown(value)} is negative; this amount cannot be")
    whole = whole.lstrip("0")
    if len(whole) > _MAX_WHOLE_DIGITS:
        raise MoneyError(f"{_shown(value)} is too large")
    nanos = int(whole or "0") * NANOS_PER_USD + int(fraction.ljust(9, "0"))
    if nanos > MAX_NANOS:
        raise MoneyError(f"{_shown(value)} is too large")
    return -nanos if minus else nanos


def _whole_text(value: int) -> str:
    # Bounded before str(): Python refuses to print ints of over 4,300 digits.
    if abs(value) > MAX_NANOS // NANOS_PER_USD:
        raise MoneyError("the amount is too large")
    return str(value)


def _decimal_text(value: Decimal) -> str:
    """A Decimal (from code, not from people) as the grammar's text: exact, its
    trailing zeros dropped, bounded before it is written out in full."""
    if not value.is_finite():
        raise MoneyError(f"{_shown(value)} is not a finite amount")
    if not value:
        return "0"
    sign, digits, exponent = value.as_tuple()
    digits = list(digits)
    while exponent < 0 and digits[-1] == 0:
        digits.pop()
        exponent += 1
    if len(digits) + exponent > _MAX_WHOLE_DIGITS:
        raise MoneyError(f"{_shown(value)} is too large")
    if exponent < -9:
        raise MoneyError(f"{_shown(value)} has more than 9 decimal places")
    return format(Decimal((sign, tuple(digits), exponent)), "f")


def _shown(value: object) -> str:
    """The value in an error message, cut short: messages reach people."""
    text = repr(value if isinstance(value, str) else str(value))
    return text if len(text) <= 40 else text[:37] + "…'"


def nanos_to_decimal(nanos: int) -> Decimal:
    return Decimal(nanos).scaleb(-9)


def nanos_to_usd(nanos: int) -> str:
    """The JSON form: a decimal string with all nine places, e.g. "120.000000000"."""
    return f"{nanos_to_decimal(nanos):.9f}"


def usd_plain(nanos: int) -> str:
    """ "1.25", "10", "0.075": exact, with no trailing zeros and no exponent."""
    return format(nanos_to_decimal(nanos).normalize(), "f")


def format_usd(nanos: int, places: int = 2) -> str:
    """For people: "$1,234.57", "-$0.01" (rounded half to even, for display)."""
    sign = "-" if nanos < 0 else ""
    amount = nanos_to_decimal(abs(nanos)).quantize(Decimal(1).scaleb(-places))
    return f"{sign}${amount:,f}"


def usd(nanos: int, *, precise: bool = False) -> str:
    """Two decimals; four when ``precise`` and the amount is under a cent, so a
    day of light API usage does not read as $0.00."""
    if precise and nanos and abs(nanos) < NANOS_PER_USD // 100:
        return format_usd(nanos, places=4)
    return format_usd(nanos)


def ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def percent_of(nanos: int, rate: Decimal) -> int:
    """``rate`` × ``nanos`` rounded down to a whole nano (bonuses never overpay)."""
    return int((Decimal(nanos) * rate).to_integral_value(rounding=ROUND_FLOOR))


__all__ = [
    "MAX_NANOS",
    "NANOS_PER_USD",
    "MoneyError",
    "ceil_div",
    "format_usd",
    "nanos_to_decimal",
    "nanos_to_usd",
    "percent_of",
    "usd",
    "usd_plain",
    "usd_to_nanos",
]
