"""Edges of the proxy's billing: hostile input, worst cases, retried batches."""

from __future__ import annotations

import json
import uuid

import httpx
import openai
import pytest
from django.db import connection

from billing.ledger.reconciliation import ledger_check
from billing.ledger.selectors import balance_get
from money import usd_to_nanos
from proxy.models import RequestLog, UsageRollup, UsageRollupDay
from proxy.rollups import usage_fold
from tests.support.proxy import nothing_held
from tests.support.world import grant

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_model_name_with_a_nul_does_not_spoil_other_requests_billing(
    alice, alice_key, alice_client, platform
):
    bad = httpx.post(
        f"{platform.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {alice_key.secret}"},
        content=json.dumps({"model": "x\u0000y", "messages": []}),
        timeout=10,
    )
    assert bad.status_code == 404
    surrogate = httpx.post(
        f"{platform.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {alice_key.secret}"},
        content=json.dumps({"model": "x\ud800", "messages": []}),
        timeout=10,
    )
    assert surrogate.status_code == 400
    answer = alice_client.chat.completions.create(
        model="fake/gpt",
        messages=[{"role": "user", "content": "#upstream completion_tokens=3"}],
    )
    assert answer.usage.completion_tokens == 3
    logs = {log.status: log for log in RequestLog.objects.all()}
    assert set(logs) == {200, 400, 404}
    assert logs[200].cost_nanos > 0
    assert "\x00" not in logs[404].model
    assert balance_get(account=alice.account).total_nanos == (
        usd_to_nanos("50") - logs[200].cost_nanos
    )


def test_each_of_n_choices_is_held_for(bob, catalog, client_for):
    from apikeys.services import key_create

    grant(bob, "0.05")
    client = client_for(key_create(account=bob.account, name="n").secret)
    ask = {
        "model": "fake/gpt",
        "messages": [{"role": "user", "content": "#upstream completion_tokens=2"}],
        "max_tokens": 2000,  # $0.02 of output per choice
    }
    client.chat.completions.create(**ask, n=2)
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(**ask, n=3)  # $0.06 > $0.05
    assert raised.value.status_code == 402
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(**ask, n=0)
    assert raised.value.body["param"] == "n"
    # Both limits sent: the larger one is held for.
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(
            **{**ask, "max_tokens": 10}, max_completion_tokens=6000
        )
    assert raised.value.status_code == 402


def test_a_batch_retried_after_its_commit_is_not_applied_twice(alice, catalog):
    item = {
        "id": str(uuid.uuid4()),
        "hold": None,
        "lease": True,
        "api_key_id": None,
        "cost": 1_000_000,
        "model": "fake/gpt",
        "provider": "fake",
        "endpoint": "chat",
        "status": 200,
        "error": "",
        "streamed": False,
        "prompt_tokens": 1,
        "cached_tokens": 0,
        "cache_write_tokens": 0,
        "completion_tokens": 1,
        "reasoning_tokens": 0,
        "usage_estimated": False,
        "latency_ms": 1,
        "ttft_ms": None,
        "created_at": "2026-11-27T00:00:00Z",
    }
    from apikeys.services import key_create

    item["api_key_id"] = key_create(account=alice.account, name="k").api_key.pk
    answers = []
    with connection.cursor() as cursor:
        for _ in range(2):
            cursor.execute(
                "SELECT proxy_batch(%s, NULL, %s::jsonb, 0, 0, 0, 0, "
                "now() + interval '1 minute', 'batch-retried', 'x')",
                [alice.account.pk, json.dumps([item])],
            )
            answer = cursor.fetchone()[0]
            answers.append(json.loads(answer) if isinstance(answer, str) else answer)
    assert answers[0]["items"] == answers[1]["items"] == [[1_000_000, 0, 1_000_000]]
    assert balance_get(account=alice.account).total_nanos == usd_to_nanos("50") - 10**6
    assert RequestLog.objects.count() == 1
    # Its hour and its day count it once.
    assert usage_fold() == 1
    assert list(UsageRollup.objects.values_list("requests", "cost_nanos")) == [
        (1, 1_000_000)
    ]
    assert list(UsageRollupDay.objects.values_list("requests", "cost_nanos")) == [
        (1, 1_000_000)
    ]
    assert nothing_held(alice.account)
    assert ledger_check() == []
