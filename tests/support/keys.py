"""API keys in tests: keys in one line (through ``key_create``), request logs
written straight to the table with their hourly rollups (as the proxy would),
and API clients that send a key as a bearer."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from django.db.models import F
from django.utils import timezone
from rest_framework.test import APIClient

from apikeys.models import ApiKey, KeyKind
from apikeys.services import CreatedKey, key_create
from proxy.call import request_id
from proxy.models import RequestLog, UsageRollup

_names = itertools.count()


def bearer(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def make_key(user, *, kind: str = KeyKind.PAYG, name: str | None = None, **extra):
    return key_create(
        account=user.account,
        name=name or f"key-{next(_names)}",
        kind=kind,
        **extra,
    )


def make_log(key: ApiKey | CreatedKey, *, at: datetime | None = None, **fields):
    """A request log as proxy_batch writes it: a UUIDv7 id of its moment, a
    charge by kind of token that sums to its cost, and the hourly rollup it
    adds to (counts and cost analytics read the rollups)."""
    api_key = key.api_key if isinstance(key, CreatedKey) else key
    at = at or timezone.now()
    values = {
        "id": request_id(at),
        "model": "openai/gpt-5",
        "provider": "openai",
        "endpoint": "chat.completions",
        "status": 200,
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "cost_nanos": 325_000,
        "cost_bonus_nanos": 325_000,
        "latency_ms": 420,
        "ttft_ms": 180,
        **fields,
    }
    kinds = ("input_cost_nanos", "cached_cost_nanos", "cache_write_cost_nanos")
    if "cost_nanos" not in fields and not any(k in fields for k in kinds):
        # 100 prompt tokens at $1.25 / 1M and 20 completion tokens at $10 / 1M.
        values.setdefault("input_cost_nanos", 125_000)
    values.setdefault(
        "output_cost_nanos",
        values["cost_nanos"] - sum(values.get(k, 0) for k in kinds),
    )
    log = RequestLog.objects.create(
        account_id=api_key.account_id, api_key=api_key, created_at=at, **values
    )
    rollup_add(log)
    return log


ROLLUP_SUMS = (
    "prompt_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cost_nanos",
    "input_cost_nanos",
    "cached_cost_nanos",
    "cache_write_cost_nanos",
    "output_cost_nanos",
)


def rollup_add(log: RequestLog) -> None:
    """Add a log to its hourly rollup, as proxy_batch does in its statement."""
    hour = log.created_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    rollup, _ = UsageRollup.objects.get_or_create(
        account_id=log.account_id,
        hour=hour,
        api_key_id=log.api_key_id,
        model=log.model,
        provider=log.provider,
    )
    UsageRollup.objects.filter(pk=rollup.pk).update(
        requests=F("requests") + 1,
        errors=F("errors") + (1 if log.status >= 400 else 0),
        **{name: F(name) + getattr(log, name) for name in ROLLUP_SUMS},
    )
