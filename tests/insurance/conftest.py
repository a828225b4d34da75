"""Every insurance test starts from the shipped coverage rules
(tests/support/insurance.py says why they may be missing)."""

from __future__ import annotations

import pytest

from tests.support.insurance import shipped_rules_ensure


@pytest.fixture(autouse=True)
def _shipped_rules(db):
    shipped_rules_ensure()
