"""USD at the edges, exact integer nanos inside: billing.money."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.money import (
    MAX_NANOS,
    MoneyError,
    ceil_div,
    format_usd,
    nanos_to_decimal,
    nanos_to_usd,
    percent_of,
    usd_to_nanos,
)


@pytest.mark.parametrize(
    ("value", "nanos"),
    [
        ("120", 120_000_000_000),
        ("0.000000001", 1),
        ("1.25", 1_250_000_000),
        ("120.000000000", 120_000_000_000),
        (" 12.5 ", 12_500_000_000),
        ("-0.000000001", -1),
        ("0", 0),
        (Decimal("0.1"), 100_000_000),
        (7, 7_000_000_000),
        ("9223372036.854775807", MAX_NANOS),
    ],
)
def test_usd_to_nanos_is_exact(value, nanos):
    result = usd_to_nanos(value)
    assert result == nanos
    assert type(result) is int


@pytest.mark.parametrize("value", [1.5, 1.0, 0.1, True, False])
def test_usd_to_nanos_refuses_floats_and_bools(value):
    with pytest.raises(MoneyError, match="decimal string, not a (float|bool)"):
        usd_to_nanos(value)


@pytest.mark.parametrize("value", ["0.0000000001", "1.1234567891", "1e-10"])
def test_usd_to_nanos_refuses_more_than_nine_decimal_places(value):
    with pytest.raises(MoneyError, match="more than 9 decimal places"):
        usd_to_nanos(value)


@pytest.mark.parametrize(
    "value",
    [
        # 29 significant digits: Decimal's default 28-digit context rounds the
        # product to an integer, and the fraction silently disappears.
        "1.0000000000000000000000000001",
        "0.0000000010000000000000000000000000001",
        # So small that the product underflows to zero.
        "1e-1000040",
    ],
)
def test_usd_to_nanos_refuses_sub_nano_digits_beyond_decimal_precision(value):
    with pytest.raises(MoneyError, match="more than 9 decimal places"):
        usd_to_nanos(value)


@pytest.mark.parametrize(
    "value", ["NaN", "nan", "sNaN", "Infinity", "-Infinity", "inf"]
)
def test_usd_to_nanos_refuses_non_finite_values(value):
    with pytest.raises(MoneyError, match="not a finite amount"):
        usd_to_nanos(value)


@pytest.mark.parametrize("value", ["", "abc", "1,5", "$5", "0x10"])
def test_usd_to_nanos_refuses_what_is_not_a_number(value):
    with pytest.raises(MoneyError, match="not a decimal amount"):
        usd_to_nanos(value)


@pytest.mark.parametrize("value", ["9223372036.854775808", "-9223372036.854775808"])
def test_usd_to_nanos_refuses_amounts_beyond_bigint(value):
    with pytest.raises(MoneyError, match="too large"):
        usd_to_nanos(value)


def test_usd_to_nanos_refuses_a_huge_exponent_with_a_money_error():
    # Not decimal.Overflow escaping to the caller (a 500 behind a form).
    with pytest.raises(MoneyError):
        usd_to_nanos("1e999999")


def test_usd_to_nanos_refuses_other_types():
    with pytest.raises(MoneyError, match="not a list"):
        usd_to_nanos([1])


@pytest.mark.parametrize(
    "nanos",
    [0, 1, -1, 999_999_999, 1_000_000_000, 120_000_000_000, MAX_NANOS, -MAX_NANOS],
)
def test_nanos_to_usd_round_trips(nanos):
    text = nanos_to_usd(nanos)
    assert usd_to_nanos(text) == nanos
    assert text.rsplit(".", 1)[1].__len__() == 9


def test_nanos_to_usd_has_nine_places():
    assert nanos_to_usd(120_000_000_000) == "120.000000000"
    assert nanos_to_usd(1) == "0.000000001"
    assert nanos_to_usd(-1_250_000_000) == "-1.250000000"
    assert nanos_to_decimal(1_250_000_000) == Decimal("1.25")


def test_format_usd_for_people():
    assert format_usd(1_234_567_890_000) == "$1,234.57"
    assert format_usd(-10_000_000) == "-$0.01"
    assert format_usd(0) == "$0.00"
    assert format_usd(5 * 1_000_000_000, 9) == "$5.000000000"


@pytest.mark.parametrize(
    ("nanos", "text"),
    [
        (0, "$0.000000000"),
        (1, "$0.000000001"),
        (100, "$0.000000100"),
        (-5, "-$0.000000005"),
    ],
)
def test_format_usd_never_writes_exponents(nanos, text):
    # These strings end up in error messages ("insufficient credits: $0E-9
    # available") that customers read.
    assert format_usd(nanos, 9) == text


def test_cost_rounds_up_once_and_bonus_rounds_down():
    assert ceil_div(1, 1_000_000) == 1
    assert ceil_div(2_000_000, 1_000_000) == 2
    assert ceil_div(0, 1_000_000) == 0
    assert percent_of(100 * 1_000_000_000, Decimal("0.20")) == 20_000_000_000
    assert percent_of(9, Decimal("0.20")) == 1
    assert percent_of(4, Decimal("0.20")) == 0
