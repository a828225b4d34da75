"""The ledger tests' fixture: a fresh customer with nothing in it. Their
helpers (grants, counts of every ledger table, the whole-ledger check, threads
with their own connections) are in tests/support."""

from __future__ import annotations

import pytest

from accounts.models import Account
from tests.support.world import new_account


@pytest.fixture
def customer(db) -> Account:
    """A fresh customer account with nothing in it."""
    return new_account()
