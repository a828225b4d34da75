"""Money is an ``int`` of nano-USD everywhere; ``Decimal`` only at the edges."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal, InvalidOperation

NANOS_PER_USD = 1_000_000_000
# The largest value a BigIntegerField (PostgreSQL bigint) holds.
MAX_NANOS = 2**63 - 1


class MoneyError(ValueError):
    """A value that cannot be an amount of money."""


def usd_to_nanos(value: str | Decimal | int) -> int:
    """Parse a USD amount ("12.5", Decimal, or a whole int) into exact nanos.

    Floats are refused: a float cannot carry a price exactly. More than nine
    decimal places would need rounding, so they are refused too.
    """
    if isinstance(value, bool | float):
        raise MoneyError(
            f"amount must be a decimal string, not a {type(value).__name__}"
        )
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise MoneyError(f"{value!r} is not a decimal amount") from None
    else:
        raise MoneyError(
            f"amount must be a decimal string, not a {type(value).__name__}"
        )
    if not amount.is_finite():
        raise MoneyError(f"{value!r} is not a finite amount")
    # Exact integer arithmetic on the digits: Decimal's context would round.
    sign, digits, exponent = amount.as_tuple()
    coefficient = int("".join(map(str, digits)) or "0")
    if coefficient and amount.adjusted() > 18:
        raise MoneyError(f"{value!r} is too large")
    shift = exponent + 9  # nanos = coefficient × 10**shift
    if shift >= 0:
        nanos = coefficient * 10**shift
    elif coefficient == 0:
        nanos = 0
    elif -shift > len(digits) or coefficient % 10**-shift:
        raise MoneyError(f"{value!r} has more than 9 decimal places")
    else:
        nanos = coefficient // 10**-shift
    if nanos > MAX_NANOS:
        raise MoneyError(f"{value!r} is too large")
    return -nanos if sign else nanos


def nanos_to_decimal(nanos: int) -> Decimal:
    return Decimal(nanos).scaleb(-9)


def nanos_to_usd(nanos: int) -> str:
    """The JSON form: a decimal string with all nine places, e.g. "120.000000000"."""
    return f"{nanos_to_decimal(nanos):.9f}"


def usd_plain(nanos: int) -> str:
    """ "1.25", "10", "0.075": exact, with no trailing zeros and no exponent."""
    return format(nanos_to_decimal(nanos).normalize(), "f")


def format_usd(nanos: int, places: int = 2) -> str:
    """For people: "$1,234.57", "-$0.01". Rounds half away from zero for display."""
    sign = "-" if nanos < 0 else ""
    amount = nanos_to_decimal(abs(nanos)).quantize(Decimal(1).scaleb(-places))
    return f"{sign}${amount:,f}"


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
    "usd_plain",
    "usd_to_nanos",
]
