"""The platform in its own process against the test database, and the official
openai SDK as the client. The fake upstream and its catalog are fixtures of
tests/conftest.py; the test model's prices and the proxy's helpers are in
tests/support/proxy.py."""

from __future__ import annotations

import pytest
from django.db import connections
from openai import OpenAI

from apikeys.services import key_create
from tests.support.platform import PlatformProcess, database_url


@pytest.fixture(scope="session")
def platform(django_db_setup, django_db_blocker, upstream):
    with django_db_blocker.unblock():
        url = database_url(connections["default"].settings_dict)
    with PlatformProcess(
        database_url=url, env={"FAKE_UPSTREAM_KEY": "sk-upstream-test"}
    ) as process:
        yield process
    with django_db_blocker.unblock(), connections["default"].cursor() as cursor:
        # Connections of platform processes killed by tests, so that the test
        # database can be dropped.
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture
def alice_key(alice, catalog):
    return key_create(account=alice.account, name="production-app")


@pytest.fixture
def client_for(platform):
    def make(secret: str, **options) -> OpenAI:
        options.setdefault("max_retries", 0)
        options.setdefault("timeout", 20)
        return OpenAI(base_url=platform.base_url, api_key=secret, **options)

    return make


@pytest.fixture
def alice_client(alice_key, client_for):
    return client_for(alice_key.secret)
