"""Usage at chosen moments, written the way the proxy writes it: request logs
settled by ``proxy_batch`` (proxy/sql/proxy_v1.sql), which charges the account,
writes the logs and appends what they add to the hourly rollups (deltas that
``proxy.rollups.usage_fold`` folds in) in one statement. Costs
are metered as the proxy meters them (``proxy.metering``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson
from django.db import connection

from apikeys.models import ApiKey
from apikeys.services import CreatedKey
from money import usd_to_nanos
from proxy import metering
from proxy.call import request_id
from proxy.pricing import Price, Usage

# USD per 1M tokens, as tests/support/proxy.py prices the test model.
TEST_PRICE = Price(
    input=usd_to_nanos("1.25"),
    cached_input=usd_to_nanos("0.125"),
    cache_write=usd_to_nanos("1.5"),
    output=usd_to_nanos("10"),
)


def usage_item(
    key: ApiKey | CreatedKey,
    *,
    at: datetime,
    model: str = "fake/gpt",
    provider: str = "fake",
    price: Price = TEST_PRICE,
    status: int = 200,
    prompt_tokens: int = 0,
    cached_tokens: int = 0,
    cache_write_tokens: int = 0,
    completion_tokens: int = 0,
    reasoning_tokens: int = 0,
    **fields,
) -> dict:
    """One settled request, as ``proxy.call.Call.log_item`` makes it."""
    api_key = key.api_key if isinstance(key, CreatedKey) else key
    usage = Usage(
        prompt_tokens=prompt_tokens,
        cached_tokens=cached_tokens,
        cache_write_tokens=cache_write_tokens,
        completion_tokens=completion_tokens,
        reasoning_tokens=reasoning_tokens,
    )
    cost = metering.usage_cost(usage, price)
    parts = metering.cost_parts(usage, price)
    return {
        "id": str(request_id(at)),
        "hold": None,
        "lease": False,
        "api_key_id": api_key.pk,
        "cost": cost,
        "uncapped_cost_nanos": cost,
        "over_reported": False,
        "model": model,
        "provider": provider,
        "endpoint": "chat",
        "status": status,
        "error": "" if status < 400 else f"upstream answered {status}",
        "streamed": False,
        "prompt_tokens": prompt_tokens,
        "cached_tokens": cached_tokens,
        "cache_write_tokens": cache_write_tokens,
        "completion_tokens": completion_tokens,
        "reasoning_tokens": reasoning_tokens,
        "usage_estimated": False,
        "latency_ms": 100,
        "ttft_ms": 50,
        "finish_reason": "stop" if status < 400 else "",
        "cancelled": False,
        "upstream_model": model.rpartition("/")[2],
        "price_id": None,
        "input_cost_nanos": parts[0],
        "cached_cost_nanos": parts[1],
        "cache_write_cost_nanos": parts[2],
        "created_at": at.astimezone(UTC).isoformat(),
        **fields,
    }


def usage_commit(account_id: int, items: list[dict]) -> dict:
    """Settle ``items`` (one account's) in one ``proxy_batch``, charged from
    the balance without a hold; its answer."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT proxy_batch(%s, NULL, %s::jsonb, 0, 0, 0, 0, %s, %s, %s)",
            [
                account_id,
                orjson.dumps(items).decode(),
                datetime.now(UTC) + timedelta(minutes=15),
                uuid.uuid4().hex,
                f"API usage: {len(items)} requests",
            ],
        )
        (answer,) = cursor.fetchone()
    return orjson.loads(answer) if isinstance(answer, str | bytes) else answer
