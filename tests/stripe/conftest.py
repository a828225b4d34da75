"""Stripe tests run against localstripe (see fixtures.py)."""

from __future__ import annotations

from tests.stripe.fixtures import *  # noqa: F403  (the Stripe fixtures)
from tests.stripe.fixtures import (  # noqa: F401  (used by the tests here)
    CHARGE_FAILS,
    THREE_D_SECURE,
    VISA,
    VISA_DEBIT,
    browser_card_confirm,
)
