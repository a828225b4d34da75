"""A real upstream process, the platform in its own process against the test
database, and the official openai SDK as the client."""

from __future__ import annotations

import pytest
from django.db import connections
from openai import OpenAI

from apikeys.services import key_create
from money import usd_to_nanos
from proxy.models import CatalogModel, ModelPrice, Provider
from tests.proxy.platform import PlatformProcess, database_url
from tests.upstream.process import UpstreamProcess

# USD per 1M tokens of the test model.
PRICES = {
    "input": "1.25",
    "cached_input": "0.125",
    "cache_write": "1.5",
    "output": "10",
}


@pytest.fixture(scope="session")
def upstream():
    with UpstreamProcess(api_key="sk-upstream-test") as process:
        yield process


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
def catalog(transactional_db, upstream):
    provider = Provider.objects.create(
        name="fake",
        base_url=upstream.base_url,
        api_key_env="FAKE_UPSTREAM_KEY",
        read_timeout_seconds=5,
    )
    chat = CatalogModel.objects.create(
        id="fake/gpt",
        provider=provider,
        upstream="gpt-upstream",
        context_length=200_000,
        max_output_tokens=8_192,
    )
    embed = CatalogModel.objects.create(
        id="fake/embed",
        provider=provider,
        upstream="embed-upstream",
        kind="embedding",
        context_length=8_192,
        max_output_tokens=0,
    )
    for model in (chat, embed):
        ModelPrice.objects.create(
            model=model,
            input_nanos=usd_to_nanos(PRICES["input"]),
            cached_input_nanos=usd_to_nanos(PRICES["cached_input"]),
            cache_write_nanos=usd_to_nanos(PRICES["cache_write"]),
            output_nanos=usd_to_nanos(PRICES["output"]),
        )
    return {"chat": chat, "embed": embed}


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


def nothing_held(account, timeout: float = 5.0) -> bool:
    """Wait until nothing of the account is held: a worker gives its lease back
    once unused for PROXY_LEASE_IDLE_SECONDS."""
    import time

    from billing.ledger.selectors import balance_get

    deadline = time.monotonic() + timeout
    while balance_get(account=account).held_nanos:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def hold_for(forwarded: dict, output_tokens: int) -> int:
    """The hold of a text-only chat request at PRICES: its prompt bound is the
    size of the JSON forwarded upstream (``forwarded``, as the upstream process
    recorded it), at the highest input price, plus its output allowance
    (proxy.pricing.chat_prompt_bound and hold_amount)."""
    import orjson

    from money import ceil_div

    prompt_price = max(usd_to_nanos(PRICES[k]) for k in PRICES if k != "output")
    prompt_bound = len(orjson.dumps(forwarded))
    return ceil_div(
        prompt_bound * prompt_price + output_tokens * usd_to_nanos(PRICES["output"]),
        10**6,
    )
