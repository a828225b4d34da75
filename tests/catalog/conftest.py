"""The catalog tests' fixtures: a small catalog to bend into bad shapes, and
the shipped one (tests/support/catalog.py)."""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.support.catalog import SHIPPED, SMALL


@pytest.fixture
def small() -> dict:
    """A fresh copy of a two-provider, two-model catalog to change at will."""
    return copy.deepcopy(SMALL)


@pytest.fixture
def shipped() -> dict:
    return yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
