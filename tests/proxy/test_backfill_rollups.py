"""Request logs written before logs kept their charge by kind (UUIDv4 ids) are
split by kind at the price of their time and counted in the rollups by the
migration that follows them (proxy/migrations/0007_backfill_rollups.py)."""

from __future__ import annotations

import importlib
import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection

from apikeys.services import key_create
from proxy.models import (
    CatalogModel,
    ModelPrice,
    Provider,
    RequestLog,
    UsageRollup,
    UsageRollupDay,
)
from tests.support.keys import make_log

pytestmark = pytest.mark.django_db

BACKFILL = importlib.import_module("proxy.migrations.0007_backfill_rollups").BACKFILL
AT = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)


@pytest.fixture
def price(db) -> ModelPrice:
    provider = Provider.objects.create(name="openai", base_url="https://api.test/v1")
    model = CatalogModel.objects.create(
        id="openai/gpt-5", provider=provider, upstream="gpt-5", context_length=1000
    )
    return ModelPrice.objects.create(
        model=model,
        effective_from=datetime(2026, 1, 1, tzinfo=UTC),
        input_nanos=1_250_000_000,
        cached_input_nanos=125_000_000,
        cache_write_nanos=0,
        output_nanos=10_000_000_000,
    )


def old_log(key, **fields) -> RequestLog:
    """A log as proxy_batch wrote them before: a UUIDv4, no charge by kind, no
    rollup."""
    values = {
        "model": "openai/gpt-5",
        "provider": "openai",
        "endpoint": "chat",
        "status": 200,
        "created_at": AT,
        **fields,
    }
    return RequestLog.objects.create(
        id=uuid.uuid4(), account_id=key.account_id, api_key=key, **values
    )


def test_old_logs_are_split_by_kind_and_rolled_up_once(alice, price):
    key = key_create(account=alice.account, name="k").api_key
    # 600 uncached, 400 cached, 7 completion tokens: 750,000 + 50,000 + 70,000.
    whole = old_log(
        key, prompt_tokens=1000, cached_tokens=400, completion_tokens=7,
        cost_nanos=870_000,
    )  # fmt: skip
    # Charged less than its usage (the balance ran out): input first.
    short = old_log(
        key, prompt_tokens=1000, completion_tokens=7, cost_nanos=100_000
    )  # fmt: skip
    failed = old_log(key, status=502)
    # A log written since, already in the rollups: not counted again.
    new = make_log(key, at=AT)

    with connection.cursor() as cursor:
        cursor.execute(BACKFILL)

    whole.refresh_from_db()
    assert (
        whole.input_cost_nanos,
        whole.cached_cost_nanos,
        whole.cache_write_cost_nanos,
        whole.output_cost_nanos,
        whole.price_id,
    ) == (750_000, 50_000, 0, 70_000, price.id)
    short.refresh_from_db()
    assert (short.input_cost_nanos, short.output_cost_nanos) == (100_000, 0)
    failed.refresh_from_db()
    assert failed.cost_nanos == failed.output_cost_nanos == 0

    rollup = UsageRollup.objects.get()
    assert rollup.hour == AT.replace(minute=0)
    assert (rollup.requests, rollup.errors) == (4, 1)
    assert rollup.cost_nanos == 870_000 + 100_000 + new.cost_nanos
    assert rollup.input_cost_nanos == 750_000 + 100_000 + new.input_cost_nanos
    assert rollup.prompt_tokens == 2000 + new.prompt_tokens
    day = UsageRollupDay.objects.get()
    assert (day.day, day.requests, day.cost_nanos) == (
        AT.date(),
        4,
        rollup.cost_nanos,
    )


def test_an_old_log_of_a_model_without_a_price_charges_its_output(alice, price):
    key = key_create(account=alice.account, name="k").api_key
    log = old_log(key, prompt_tokens=10, cost_nanos=5, model="gone/model")
    with connection.cursor() as cursor:
        cursor.execute(BACKFILL)
    log.refresh_from_db()
    assert (log.input_cost_nanos, log.output_cost_nanos, log.price_id) == (0, 5, None)
