"""API keys in tests: keys in one line (through ``key_create``), request logs
written straight to the table (as the proxy would), and API clients that send a
key as a bearer."""

from __future__ import annotations

import itertools
from datetime import datetime

from rest_framework.test import APIClient

from apikeys.models import ApiKey, KeyKind
from apikeys.services import CreatedKey, key_create
from proxy.models import RequestLog

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
    api_key = key.api_key if isinstance(key, CreatedKey) else key
    values = {
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
    if at is not None:
        values["created_at"] = at
    return RequestLog.objects.create(
        account_id=api_key.account_id, api_key=api_key, **values
    )
