"""GET /api/v1/requests: the account's request logs, filtered and paginated."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apikeys.models import KeyKind
from tests.support.keys import bearer, make_key, make_log

LOG_FIELDS = {
    "id",
    "created_at",
    "key",
    "model",
    "provider",
    "status",
    "streamed",
    "prompt_tokens",
    "cached_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "usage_estimated",
    "cost",
    "cost_top_up",
    "cost_bonus",
    "latency_ms",
    "ttft_ms",
    "error",
}


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


@pytest.fixture
def world(alice, bob):
    """Alice has two keys and five requests over three days; bob has one."""
    one, two = make_key(alice, name="one"), make_key(alice, name="two")
    logs = {
        "one-1st": make_log(one, at=at(1)),
        "one-2nd": make_log(one, at=at(2), model="anthropic/claude-sonnet-4"),
        "two-2nd": make_log(two, at=at(2, 23), status=502, error="upstream timeout"),
        "two-3rd-early": make_log(two, at=at(3, 0)),
        "one-3rd": make_log(
            one,
            at=at(3, 18),
            streamed=True,
            cached_tokens=40,
            reasoning_tokens=7,
            usage_estimated=True,
            cost_nanos=1_000_000_001,
            cost_topup_nanos=1,
            cost_bonus_nanos=1_000_000_000,
            ttft_ms=None,
        ),
    }
    make_log(make_key(bob), at=at(2))
    return one.api_key, two.api_key, logs


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_logs_are_newest_first_with_every_field(world, api_for, alice):
    one, _, logs = world
    body = api_for(alice).get("/api/v1/requests").json()
    assert body["count"] == 5
    assert [r["id"] for r in body["results"]] == [
        str(logs[name].id)
        for name in ("one-3rd", "two-3rd-early", "two-2nd", "one-2nd", "one-1st")
    ]
    newest = body["results"][0]
    assert set(newest) == LOG_FIELDS
    assert newest == {
        "id": str(logs["one-3rd"].id),
        "created_at": "2026-03-03T18:00:00Z",
        "key": one.pk,
        "model": "openai/gpt-5",
        "provider": "openai",
        "status": 200,
        "streamed": True,
        "prompt_tokens": 100,
        "cached_tokens": 40,
        "completion_tokens": 20,
        "reasoning_tokens": 7,
        "usage_estimated": True,
        "cost": "1.000000001",
        "cost_top_up": "0.000000001",
        "cost_bonus": "1.000000000",
        "latency_ms": 420,
        "ttft_ms": None,
        "error": "",
    }


def test_filters_by_key_model_and_dates(world, api_for, alice):
    one, two, logs = world
    client = api_for(alice)

    def names(query):
        by_id = {str(log.id): name for name, log in logs.items()}
        return [by_id[i] for i in ids(client.get(f"/api/v1/requests?{query}"))]

    assert names(f"key={two.pk}") == ["two-3rd-early", "two-2nd"]
    assert names("model=anthropic/claude-sonnet-4") == ["one-2nd"]
    # A date covers its whole day, at both ends.
    assert names("from=2026-03-02&to=2026-03-02") == ["two-2nd", "one-2nd"]
    assert names("from=2026-03-03") == ["one-3rd", "two-3rd-early"]
    assert names("to=2026-03-01") == ["one-1st"]
    # Date-times are exact and inclusive; without an offset they are UTC.
    assert names("from=2026-03-02T23:00:00Z&to=2026-03-03T00:00:00") == [
        "two-3rd-early",
        "two-2nd",
    ]
    assert names("from=2026-03-03T01:00:00%2B01:00") == [
        "one-3rd",
        "two-3rd-early",
    ]
    assert names(f"key={one.pk}&model=openai/gpt-5&from=2026-03-02") == ["one-3rd"]


def test_paginated(world, api_for, alice):
    body = api_for(alice).get("/api/v1/requests/?limit=2&offset=2").json()
    assert body["count"] == 5
    assert len(body["results"]) == 2
    assert body["next"] and body["previous"]


def test_another_accounts_logs_are_never_listed(world, api_for, bob, alice):
    one, _, _ = world
    client = api_for(bob)
    assert client.get("/api/v1/requests").json()["count"] == 1
    assert ids(client.get(f"/api/v1/requests?key={one.pk}")) == []


def test_a_management_key_reads_its_accounts_logs(world, alice):
    secret = make_key(alice, kind=KeyKind.MANAGEMENT).secret
    assert bearer(secret).get("/api/v1/requests").json()["count"] == 5


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=yesterday", "from"),
        ("to=2026-02-30", "to"),
        ("from=2026-13-01T00:00:00", "from"),
        ("to=9999-12-31T23:59:59.999999", "to"),
        ("key=abc", "key"),
        ("key=-1", "key"),
        ("from=2026-03-03&to=2026-03-01", "to"),
    ],
)
def test_bad_filters_are_400_naming_the_parameter(world, api_for, alice, query, field):
    response = api_for(alice).get(f"/api/v1/requests?{query}")
    assert response.status_code == 400
    assert field in response.json()
