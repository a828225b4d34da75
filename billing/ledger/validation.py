"""Checks of the arguments of the ledger's services: a clear InvalidAmount
naming the problem before anything is written."""

from __future__ import annotations

from billing.errors import InvalidAmount
from money import MAX_NANOS


def amount_check(
    amount: object, *, allow_negative: bool, allow_zero: bool = False
) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidAmount(
            f"amounts are whole nano-USD integers, not {type(amount).__name__}"
        )
    if amount == 0 and not allow_zero:
        raise InvalidAmount("the amount must not be zero")
    if amount < 0 and not allow_negative:
        raise InvalidAmount("the amount must be positive")
    if abs(amount) > MAX_NANOS:
        raise InvalidAmount("the amount is larger than an account can hold")


def choice_check(choices, value, field: str):
    """``value`` as a member of the TextChoices ``choices``."""
    if value in choices.values:
        return choices(value)
    raise InvalidAmount(
        f"unknown {field} {value!r}; expected one of {', '.join(choices.values)}"
    )
