"""USD at the edges, exact integer nanos inside: money."""

from __future__ import annotations

from decimal import Decimal

import pytest

from money import (
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
        ("0", 0),
        ("007.50", 7_500_000_000),
        (Decimal("0.1"), 100_000_000),
        (7, 7_000_000_000),
        ("9223372036.854775807", MAX_NANOS),
    ],
)
def test_usd_to_nanos_is_exact(value, nanos):
    result = usd_to_nanos(value)
    assert result == nanos
    assert type(result) is int


@pytest.mark.parametrize(
    ("value", "nanos"),
    [("-0.000000001", -1), ("-5", -5_000_000_000), (-7, -7_000_000_000)],
)
def test_a_minus_only_where_the_amount_may_be_negative(value, nanos):
    assert usd_to_nanos(value, signed=True) == nanos
    with pytest.raises(MoneyError, match="is negative"):
        usd_to_nanos(value)


@pytest.mark.parametrize(
    "value",
    [
        "1e3",  # was $1,000
        "1E3",
        "1e-10",
        "\u0661\u0662",  # Arabic-Indic digits: was 12
        "\u06f1\u06f2",  # Extended Arabic-Indic
        "\uff11\uff12",  # full-width
        "\u0967\u0968",  # Devanagari
        "1,5",
        "1_000",
        "+5",
        ".5",
        "5.",
        "5 000",
        "--5",
        "0x10",
        "$5",
        "abc",
        "",
        "NaN",
        "Infinity",
        "5\x00",
        "5\u202e",
    ],
)
def test_usd_to_nanos_takes_ascii_decimals_only(value):
    with pytest.raises(MoneyError, match="not a decimal amount"):
        usd_to_nanos(value, signed=True)


@pytest.mark.parametrize("value", [1.5, 1.0, 0.1, True, False])
def test_usd_to_nanos_refuses_floats_and_bools(value):
    with pytest.raises(MoneyError, match="decimal string, not a (float|bool)"):
        usd_to_nanos(value)


@pytest.mark.parametrize("value", ["0.0000000001", "1.1234567891", "1.0000000000"])
def test_usd_to_nanos_refuses_more_than_nine_decimal_places(value):
    with pytest.raises(MoneyError, match="more than 9 decimal places"):
        usd_to_nanos(value)


@pytest.mark.parametrize(
    "value",
    [
        # 29 significant digits: Decimal's default 28-digit context would round
        # the product to an integer, and the fraction silently disappear.
        Decimal("1.0000000000000000000000000001"),
        Decimal("0.0000000010000000000000000000000000001"),
        # So small that the product underflows to zero.
        Decimal("1e-1000040"),
    ],
)
def test_usd_to_nanos_refuses_sub_nano_digits_of_a_decimal(value):
    with pytest.raises(MoneyError, match="more than 9 decimal places"):
        usd_to_nanos(value)


def test_a_decimal_from_code_is_exact_whatever_its_exponent():
    assert usd_to_nanos(Decimal("1E+3")) == 1_000_000_000_000
    assert usd_to_nanos(Decimal("1.500000000000000")) == 1_500_000_000
    assert usd_to_nanos(Decimal("0E-1000000")) == 0
    with pytest.raises(MoneyError, match="too large"):
        usd_to_nanos(Decimal("1e999999"))


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("sNaN"), Decimal("-Inf")])
def test_usd_to_nanos_refuses_non_finite_decimals(value):
    with pytest.raises(MoneyError, match="not a finite amount"):
        usd_to_nanos(value)


@pytest.mark.parametrize(
    "value",
    [
        "9223372036.854775808",
        "-9223372036.854775808",
        "999999999999999999999",
        # Not int()'s ValueError for over 4,300 digits.
        pytest.param("1" * 5000, id="5000-digits"),
        9223372037,
        pytest.param(10**5000, id="int-of-5001-digits"),
    ],
)
def test_usd_to_nanos_refuses_amounts_beyond_bigint(value):
    with pytest.raises(MoneyError, match="too large"):
        usd_to_nanos(value, signed=True)


def test_an_error_shows_a_long_value_cut_short():
    with pytest.raises(MoneyError) as refused:
        usd_to_nanos("x" * 10_000)
    assert len(str(refused.value)) < 120


def test_usd_to_nanos_refuses_other_types():
    with pytest.raises(MoneyError, match="not a list"):
        usd_to_nanos([1])


@pytest.mark.parametrize(
    "nanos",
    [0, 1, -1, 999_999_999, 1_000_000_000, 120_000_000_000, MAX_NANOS, -MAX_NANOS],
)
def test_nanos_to_usd_round_trips(nanos):
    text = nanos_to_usd(nanos)
    assert usd_to_nanos(text, signed=True) == nanos
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
