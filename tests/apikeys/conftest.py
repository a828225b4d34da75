"""The API key tests' fixture: API clients signed in to a user's console
session. Keys, request logs and bearer clients in one line are in
tests/support/keys.py."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient


@pytest.fixture
def api_for():
    """An API client signed in to the console session of a user."""

    def make(user) -> APIClient:
        client = APIClient()
        client.force_login(user)
        return client

    return make
