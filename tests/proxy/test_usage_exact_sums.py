"""Exact sums: a known sequence of calls through the real proxy, with the
official openai SDK (several keys, two priced models on two providers and an
embedding model, streamed and not, cached reads, cache writes and reasoning
tokens, a client that goes away mid-stream, an upstream failure), and then
every place that counts them agrees to the nano: each log's charge by kind,
the hourly rollups and a GROUP BY of the logs, the cost analytics API in every
granularity and grouping, each request's detail (found by the X-Request-Id of
its answer), the CSV export, and the ledger's usage entries over the whole
days."""

from __future__ import annotations

import csv
import io
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import openai
import pytest
from django.db import connection

from apikeys.models import ApiKey, KeyKind
from apikeys.services import key_create
from billing.ledger.reconciliation import ledger_check
from billing.ledger.selectors import balance_get
from billing.models import EntryKind, LedgerEntry
from money import ceil_div, nanos_to_usd, usd_to_nanos
from proxy.analytics import half_even_div
from proxy.models import (
    CatalogModel,
    ModelPrice,
    Provider,
    RequestLog,
    UsageDelta,
    UsageRollup,
)
from proxy.rollups import usage_fold
from tests.support.keys import bearer
from tests.support.proxy import PRICES, nothing_held

pytestmark = pytest.mark.django_db(transaction=True)

GPT = {kind: usd_to_nanos(PRICES[kind]) for kind in PRICES}
# The second model: cheaper, on a provider of its own (the same fake upstream).
MINI = {
    "input": usd_to_nanos("0.15"),
    "cached_input": usd_to_nanos("0.075"),
    "cache_write": usd_to_nanos("0.3"),
    "output": usd_to_nanos("0.6"),
}
ROLLUP_SUMS = (
    "requests",
    "errors",
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


def cost(price: dict, prompt=0, completion=0, cached=0, written=0) -> int:
    """DESIGN.md: ceil(Σ tokens × price / 1M), one rounding up per request."""
    return ceil_div(
        (prompt - cached - written) * price["input"]
        + cached * price["cached_input"]
        + written * price["cache_write"]
        + completion * price["output"],
        10**6,
    )


def until(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return value


@pytest.fixture
def mini(catalog, upstream):
    provider = Provider.objects.create(
        name="fake2",
        base_url=upstream.base_url,
        api_key_env="FAKE_UPSTREAM_KEY",
        read_timeout_seconds=5,
    )
    model = CatalogModel.objects.create(
        id="fake2/mini",
        provider=provider,
        upstream="mini-upstream",
        context_length=128_000,
        max_output_tokens=4_096,
    )
    ModelPrice.objects.create(
        model=model,
        input_nanos=MINI["input"],
        cached_input_nanos=MINI["cached_input"],
        cache_write_nanos=MINI["cache_write"],
        output_nanos=MINI["output"],
    )
    time.sleep(0.3)  # the platform's catalog cache lives 0.2 s in tests
    return model


def chat(client, model: str, directive: str, **options):
    """A chat completion through ``with_raw_response``: (the answer, or a
    stream, and the X-Request-Id of the answer)."""
    raw = client.chat.completions.with_raw_response.create(
        model=model,
        messages=[{"role": "user", "content": f"Count to ten. {directive}"}],
        **options,
    )
    return raw.parse(), raw.headers["x-request-id"]


def test_a_sequence_of_calls_sums_to_the_nano_everywhere(
    alice, alice_key, client_for, mini, upstream
):
    batch = key_create(account=alice.account, name="batch-jobs")
    limited = key_create(
        account=alice.account, name="limited", limit_nanos=usd_to_nanos("5")
    )
    app, jobs, capped = (
        client_for(alice_key.secret),
        client_for(batch.secret),
        client_for(limited.secret),
    )
    expected: dict[str, int] = {}  # request id → its cost

    # 1. JSON; 2. streamed with usage, cached reads and reasoning.
    answer, rid = chat(
        app, "fake/gpt", "#upstream prompt_tokens=120 completion_tokens=30"
    )
    assert answer._request_id == rid
    expected[rid] = cost(GPT, 120, 30)
    stream, rid = chat(
        app,
        "fake/gpt",
        "#upstream prompt_tokens=1000 cached_tokens=800 completion_tokens=10 "
        "reasoning_tokens=40",
        stream=True,
        stream_options={"include_usage": True},
    )
    assert list(stream)[-1].usage.completion_tokens == 50
    expected[rid] = cost(GPT, 1000, 50, cached=800)
    # 3. Another key on the second model: cached reads and cache writes.
    _, rid = chat(
        jobs,
        "fake2/mini",
        "#upstream prompt_tokens=2000 cached_tokens=500 cache_write_tokens=700 "
        "completion_tokens=25",
    )
    expected[rid] = cost(MINI, 2000, 25, cached=500, written=700)
    # 4. Streamed without asking for usage (upstream is asked all the same).
    stream, rid = chat(
        jobs,
        "fake2/mini",
        "#upstream prompt_tokens=300 completion_tokens=12 reasoning_tokens=5",
        stream=True,
    )
    assert all(chunk.usage is None for chunk in stream)
    expected[rid] = cost(MINI, 300, 17)
    # 5. A key with a credit limit holds on its own: a cache write on gpt.
    _, rid = chat(
        capped,
        "fake/gpt",
        "#upstream prompt_tokens=50 cache_write_tokens=20 completion_tokens=5",
    )
    expected[rid] = cost(GPT, 50, 5, written=20)
    # 6. An embedding: the third model, on the first provider.
    raw = app.embeddings.with_raw_response.create(
        model="fake/embed", input="#upstream prompt_tokens=64"
    )
    expected[raw.headers["x-request-id"]] = cost(GPT, 64)
    # 7. Upstream fails: logged, an error, charged nothing.
    with pytest.raises(openai.InternalServerError) as failed:
        chat(jobs, "fake/gpt", "#upstream status=503")
    expected[failed.value.response.headers["x-request-id"]] = 0
    # 8. The client goes away mid-stream: what it received is counted offline.
    stream, gone = chat(
        app,
        "fake2/mini",
        "#upstream completion_tokens=200 chunk_delay_ms=40",
        stream=True,
    )
    received = 0
    for chunk in stream:
        received += bool(chunk.choices and chunk.choices[0].delta.content)
        if received == 5:
            break
    stream.close()

    logs = until(lambda: len(q := list(RequestLog.objects.all())) == 8 and q)
    assert nothing_held(alice.account)
    by_id = {str(log.id): log for log in logs}
    assert set(by_id) == {*expected, gone}

    # Each log: the expected charge, split by kind of token to the nano.
    cancelled = by_id[gone]
    assert (cancelled.status, cancelled.cancelled, cancelled.usage_estimated) == (
        499,
        True,
        True,
    )
    assert 5 <= cancelled.completion_tokens < 200
    expected[gone] = cost(MINI, cancelled.prompt_tokens, cancelled.completion_tokens)
    for rid, log in by_id.items():
        assert log.cost_nanos == expected[rid], (rid, log.model, log.status)
        assert (
            log.input_cost_nanos
            + log.cached_cost_nanos
            + log.cache_write_cost_nanos
            + log.output_cost_nanos
            == log.cost_nanos
            == log.cost_topup_nanos + log.cost_bonus_nanos
        )
    written = next(log for log in logs if log.cache_write_tokens)
    assert written.cache_write_cost_nanos == 700 * MINI["cache_write"] // 10**6
    assert by_id[failed.value.response.headers["x-request-id"]].status == 502
    spent = sum(expected.values())
    assert spent == sum(log.cost_nanos for log in logs)

    # The ledger: the balance and the usage entries, as the logs say.
    assert balance_get(account=alice.account).total_nanos == usd_to_nanos("50") - spent
    assert ledger_check() == []

    # The rollups (with the batches' deltas not folded yet, then folded) are
    # a GROUP BY of the logs, to the nano.
    assert rollups() == logs_grouped(alice.account.id)
    assert usage_fold() > 0
    assert not UsageDelta.objects.exists()
    assert rollups() == logs_grouped(alice.account.id)

    # The analytics API, over the whole days of these calls.
    first = min(log.created_at for log in logs)
    entries = LedgerEntry.objects.filter(account=alice.account, kind=EntryKind.USAGE)
    last = max(max(log.created_at for log in logs), *(e.created_at for e in entries))
    days = {"from": first.date().isoformat(), "to": last.date().isoformat()}
    since = datetime.combine(first.date(), datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(last.date(), datetime.min.time(), tzinfo=UTC) + timedelta(
        days=1
    )
    api = bearer(
        key_create(
            account=alice.account, name="reports", kind=KeyKind.MANAGEMENT
        ).secret
    )
    for granularity in ("hour", "day", "month"):
        for group_by in ("model", "key", "provider", "type"):
            response = api.get(
                "/api/v1/analytics/cost",
                {**days, "granularity": granularity, "group_by": group_by},
            )
            assert response.status_code == 200, response.content
            body = response.json()
            assert body["totals"] == totals_of(logs), (granularity, group_by)
            assert body["series"] == series_of(logs, granularity, group_by), (
                granularity,
                group_by,
            )
            assert body["models"] == models_of(logs)
    assert usd_to_nanos(body["totals"]["cost"]) == spent

    # Each call's X-Request-Id finds its log, whose detail has the cost by kind.
    for rid, log in by_id.items():
        found = api.get("/api/v1/requests", {"request_id": rid}).json()
        assert [row["id"] for row in found["results"]] == [rid]
        detail = api.get(f"/api/v1/requests/{rid}").json()
        assert usd_to_nanos(detail["cost"]) == log.cost_nanos
        assert {
            kind: usd_to_nanos(v) for kind, v in detail["cost_by_kind"].items()
        } == {
            "input": log.input_cost_nanos,
            "cached": log.cached_cost_nanos,
            "cache_write": log.cache_write_cost_nanos,
            "output": log.output_cost_nanos,
        }

    # The CSV export of those days: a row per log, its costs summing alike.
    response = api.get("/api/v1/requests.csv", days)
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sorted(row["id"] for row in rows) == sorted(by_id)
    assert sum(usd_to_nanos(row["cost_usd"]) for row in rows) == spent
    for row in rows:
        assert (
            sum(
                usd_to_nanos(row[f"{kind}_cost_usd"])
                for kind in ("input", "cached", "cache_write", "output")
            )
            == usd_to_nanos(row["cost_usd"])
            == by_id[row["id"]].cost_nanos
        )

    # The ledger's usage entries over those whole days: the analytics total.
    in_days = entries.filter(created_at__gte=since, created_at__lt=end)
    assert -sum(e.amount_nanos for e in in_days) == spent
    assert sum(e.topup_delta_nanos + e.bonus_delta_nanos for e in in_days) == -spent


def rollups() -> dict:
    """The hourly rollups and the deltas not folded into them, added up."""
    sums: dict = {}
    for r in [*UsageRollup.objects.all(), *UsageDelta.objects.all()]:
        key = (r.hour, r.api_key_id, r.model, r.provider)
        values = tuple(getattr(r, name) for name in ROLLUP_SUMS)
        sums[key] = tuple(
            map(sum, zip(sums.get(key, (0,) * len(values)), values, strict=True))
        )
    return sums


def logs_grouped(account_id: int) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
                   api_key_id, model, provider, count(*),
                   count(*) FILTER (WHERE status >= 400),
                   sum(prompt_tokens), sum(cached_tokens), sum(cache_write_tokens),
                   sum(completion_tokens), sum(reasoning_tokens), sum(cost_nanos),
                   sum(input_cost_nanos), sum(cached_cost_nanos),
                   sum(cache_write_cost_nanos), sum(output_cost_nanos)
              FROM proxy_requestlog
             WHERE account_id = %s
             GROUP BY 1, 2, 3, 4
            """,
            [account_id],
        )
        return {
            tuple(row[:4]): tuple(int(v) for v in row[4:]) for row in cursor.fetchall()
        }


# --- what the analytics should answer, computed from the logs ------------------


def moment(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def bucket(log: RequestLog, granularity: str) -> datetime:
    t = log.created_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if granularity in ("day", "month"):
        t = t.replace(hour=0)
    if granularity == "month":
        t = t.replace(day=1)
    return t


def average(nanos: int, count: int) -> str | None:
    return nanos_to_usd(half_even_div(nanos, count)) if count else None


def totals_of(logs) -> dict:
    spent = sum(log.cost_nanos for log in logs)
    tokens = sum(log.prompt_tokens + log.completion_tokens for log in logs)
    return {
        "cost": nanos_to_usd(spent),
        "input_cost": nanos_to_usd(sum(log.input_cost_nanos for log in logs)),
        "output_cost": nanos_to_usd(sum(log.output_cost_nanos for log in logs)),
        "other_cost": nanos_to_usd(
            sum(log.cached_cost_nanos + log.cache_write_cost_nanos for log in logs)
        ),
        "requests": len(logs),
        "tokens": tokens,
        "avg_cost_per_request": average(spent, len(logs)),
        "avg_cost_per_million_tokens": average(spent * 10**6, tokens),
    }


def series_of(logs, granularity: str, group_by: str) -> list[dict]:
    cells: dict[tuple, list] = defaultdict(list)
    for log in logs:
        group = {
            "model": log.model,
            "provider": log.provider,
            "key": str(log.api_key_id),
            "type": "",
        }[group_by]
        cells[(bucket(log, granularity), group)].append(log)
    names = {}
    if group_by == "key":
        names = dict(ApiKey.objects.values_list("pk", "name"))
    points = []
    for (t, group), rows in sorted(
        cells.items(),
        key=lambda c: (c[0][0], int(c[0][1]) if group_by == "key" else c[0][1]),
    ):
        if group_by == "type":
            points += kinds_of(t, rows)
            continue
        points.append(
            {
                "t": moment(t),
                "group": group,
                "label": names[int(group)] if group_by == "key" else group,
                "cost": nanos_to_usd(sum(log.cost_nanos for log in rows)),
                "requests": len(rows),
                "input_tokens": sum(log.prompt_tokens for log in rows),
                "output_tokens": sum(log.completion_tokens for log in rows),
            }
        )
    return points


def kinds_of(t: datetime, rows) -> list[dict]:
    def point(kind, label, nanos, input_tokens=0, output_tokens=0):
        return {
            "t": moment(t),
            "group": kind,
            "label": label,
            "cost": nanos_to_usd(nanos),
            "requests": len(rows),
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
        }

    def total(name):
        return sum(getattr(log, name) for log in rows)

    return [
        point(
            "input",
            "Input",
            total("input_cost_nanos"),
            total("prompt_tokens")
            - total("cached_tokens")
            - total("cache_write_tokens"),
        ),
        point(
            "cached", "Cached input", total("cached_cost_nanos"), total("cached_tokens")
        ),
        point(
            "cache_write",
            "Cache write",
            total("cache_write_cost_nanos"),
            total("cache_write_tokens"),
        ),
        point(
            "output",
            "Output",
            total("output_cost_nanos"),
            output_tokens=total("completion_tokens"),
        ),
    ]


def models_of(logs) -> list[dict]:
    by_model: dict[str, list] = defaultdict(list)
    for log in logs:
        by_model[log.model].append(log)
    rows = [
        {
            "model": model,
            "calls": len(rows),
            "input_tokens": sum(log.prompt_tokens for log in rows),
            "output_tokens": sum(log.completion_tokens for log in rows),
            "cost": nanos_to_usd(sum(log.cost_nanos for log in rows)),
            "cost_per_call": average(sum(log.cost_nanos for log in rows), len(rows)),
        }
        for model, rows in by_model.items()
    ]
    return sorted(rows, key=lambda row: (-usd_to_nanos(row["cost"]), row["model"]))
