"""GET /api/v1/requests and /api/v1/requests/{id}: the account's request logs,
filtered, counted and read one by one; another account's are never found."""

from __future__ import annotations

import uuid
import zlib
from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from apikeys.models import KeyKind
from proxy.body_retention import body_retention_set
from proxy.call import request_id
from proxy.models import CatalogModel, ModelPrice, Provider, RequestBody
from tests.support.bodies import bodies_keep
from tests.support.keys import bearer, make_key, make_log

LOG_FIELDS = {
    "id",
    "created_at",
    "key",
    "key_name",
    "model",
    "provider",
    "status",
    "http_status",
    "finish_reason",
    "streamed",
    "prompt_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "usage_estimated",
    "cancelled",
    "cost",
    "cost_top_up",
    "cost_bonus",
    "latency_ms",
    "ttft_ms",
    "throughput",
    "error",
}


def at(day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def api_for():
    def make(user) -> APIClient:
        client = APIClient()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def world(alice, bob):
    """Alice has two keys and six requests over three days; bob has one."""
    one, two = make_key(alice, name="one"), make_key(alice, name="two")
    logs = {
        "one-1st": make_log(one, at=at(1), finish_reason="stop"),
        "one-2nd": make_log(
            one,
            at=at(2),
            model="anthropic/claude-sonnet-4",
            provider="anthropic",
            finish_reason="length",
        ),
        "two-2nd": make_log(two, at=at(2, 23), status=502, error="upstream timeout"),
        "two-3rd-early": make_log(two, at=at(3, 0), finish_reason="stop"),
        "two-3rd-refused": make_log(
            two, at=at(3, 0, 30), status=400, error="bad", cost_nanos=0
        ),
        "one-3rd": make_log(
            one,
            at=at(3, 18),
            streamed=True,
            prompt_tokens=100,
            cached_tokens=40,
            cache_write_tokens=10,
            completion_tokens=20,
            reasoning_tokens=7,
            usage_estimated=True,
            cancelled=True,
            status=499,
            finish_reason="tool_calls",
            cost_nanos=1_000_000_001,
            input_cost_nanos=500_000_000,
            cached_cost_nanos=1,
            cache_write_cost_nanos=300_000_000,
            cost_topup_nanos=1,
            cost_bonus_nanos=1_000_000_000,
            latency_ms=2_180,
            ttft_ms=180,
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
    assert body["count"] == 6
    assert (body["next"], body["previous"]) == (None, None)
    assert [r["id"] for r in body["results"]] == [
        str(logs[name].id)
        for name in (
            "one-3rd",
            "two-3rd-refused",
            "two-3rd-early",
            "two-2nd",
            "one-2nd",
            "one-1st",
        )
    ]
    newest = body["results"][0]
    assert set(newest) == LOG_FIELDS
    assert newest == {
        "id": str(logs["one-3rd"].id),
        "created_at": "2026-03-03T18:00:00Z",
        "key": one.pk,
        "key_name": "one",
        "model": "openai/gpt-5",
        "provider": "openai",
        "status": "error",
        "http_status": 499,
        "finish_reason": "tool_calls",
        "streamed": True,
        "prompt_tokens": 100,
        "cached_tokens": 40,
        "cache_write_tokens": 10,
        "completion_tokens": 20,
        "reasoning_tokens": 7,
        "usage_estimated": True,
        "cancelled": True,
        "cost": "1.000000001",
        "cost_top_up": "0.000000001",
        "cost_bonus": "1.000000000",
        "latency_ms": 2_180,
        "ttft_ms": 180,
        # 20 output tokens over 2,000 ms of generation (after the first token).
        "throughput": 10.0,
        "error": "",
    }


def test_throughput_is_over_the_whole_latency_without_a_first_token(alice, api_for):
    key = make_key(alice)
    make_log(key, at=at(1), completion_tokens=30, latency_ms=1_500, ttft_ms=None)
    make_log(key, at=at(2), completion_tokens=30, latency_ms=90, ttft_ms=90)
    rows = api_for(alice).get("/api/v1/requests").json()["results"]
    assert [r["throughput"] for r in rows] == [None, 20.0]


def test_filters_each_and_together(world, api_for, alice):
    one, two, logs = world
    client = api_for(alice)
    by_id = {str(log.id): name for name, log in logs.items()}

    def names(query):
        response = client.get(f"/api/v1/requests?{query}")
        found = [by_id[i] for i in ids(response)]
        # The count is of every row the filters select, from the rollups.
        assert response.json()["count"] == len(found), query
        return found

    assert names(f"key={two.pk}") == ["two-3rd-refused", "two-3rd-early", "two-2nd"]
    all_six = [
        "one-3rd",
        "two-3rd-refused",
        "two-3rd-early",
        "two-2nd",
        "one-2nd",
        "one-1st",
    ]
    assert names(f"key={one.pk}&key={two.pk}") == all_six
    assert names(f"key={one.pk},{two.pk}") == all_six
    assert names("model=anthropic/claude-sonnet-4") == ["one-2nd"]
    assert names("provider=anthropic") == ["one-2nd"]
    assert names("status=error") == ["one-3rd", "two-3rd-refused", "two-2nd"]
    assert names("status=ok") == ["two-3rd-early", "one-2nd", "one-1st"]
    assert names("finish_reason=stop") == ["two-3rd-early", "one-1st"]
    assert names(f"request_id={logs['two-2nd'].id}") == ["two-2nd"]
    # As the X-Request-Id header spells it, in capitals too.
    assert names(f"request_id={str(logs['one-1st'].id).upper()}") == ["one-1st"]
    # A date covers its whole day, at both ends.
    assert names("from=2026-03-02&to=2026-03-02") == ["two-2nd", "one-2nd"]
    assert names("from=2026-03-03") == ["one-3rd", "two-3rd-refused", "two-3rd-early"]
    assert names("to=2026-03-01") == ["one-1st"]
    # Date-times are exact and inclusive; without an offset they are UTC.
    assert names("from=2026-03-02T23:00:00Z&to=2026-03-03T00:00:00") == [
        "two-3rd-early",
        "two-2nd",
    ]
    assert names("from=2026-03-03T01:00:00%2B01:00") == [
        "one-3rd",
        "two-3rd-refused",
        "two-3rd-early",
    ]
    assert names(f"key={one.pk}&model=openai/gpt-5&from=2026-03-02") == ["one-3rd"]
    assert names(f"key={two.pk}&status=error&from=2026-03-03") == ["two-3rd-refused"]
    assert names(f"key={two.pk}&status=ok&finish_reason=stop&to=2026-03-03") == [
        "two-3rd-early"
    ]
    assert names("provider=openai&status=ok&from=2026-03-02T12:00:00Z") == [
        "two-3rd-early"
    ]
    assert names(f"request_id={logs['two-2nd'].id}&key={one.pk}") == []


def test_a_request_id_of_another_account_finds_nothing(world, api_for, bob, alice):
    _, _, logs = world
    found = api_for(bob).get(f"/api/v1/requests?request_id={logs['one-1st'].id}")
    assert found.json() == {"count": 0, "next": None, "previous": None, "results": []}
    own = api_for(alice).get(f"/api/v1/requests?request_id={logs['one-1st'].id}")
    assert own.json()["count"] == 1


def test_another_accounts_logs_are_never_listed(world, api_for, bob):
    one, _, _ = world
    client = api_for(bob)
    assert client.get("/api/v1/requests").json()["count"] == 1
    empty = client.get(f"/api/v1/requests?key={one.pk}")
    assert ids(empty) == []
    assert empty.json()["count"] == 0


def test_a_management_key_reads_its_accounts_logs(world, alice):
    secret = make_key(alice, kind=KeyKind.MANAGEMENT).secret
    assert bearer(secret).get("/api/v1/requests").json()["count"] == 6


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=yesterday", "from"),
        ("to=2026-02-30", "to"),
        ("from=2026-13-01T00:00:00", "from"),
        ("to=9999-12-31T23:59:59.999999", "to"),
        ("key=abc", "key"),
        ("key=-1", "key"),
        ("key=1,x", "key"),
        ("key=1&key=%C2%B2", "key"),
        ("from=2026-03-03&to=2026-03-01", "to"),
        ("status=failed", "status"),
        ("provider=open%E2%80%AEai", "provider"),
        ("finish_reason=" + "x" * 41, "finish_reason"),
        ("request_id=abc", "request_id"),
        ("request_id=0192f0c1-7a3e-7b4d-9c1a-2f3e4d5c6b7", "request_id"),
        ("limit=0", "limit"),
        ("limit=-5", "limit"),
        ("limit=ten", "limit"),
        ("cursor=abc", "cursor"),
        ("cursor=%00", "cursor"),
    ],
)
def test_bad_input_is_400_naming_the_parameter(world, api_for, alice, query, field):
    response = api_for(alice).get(f"/api/v1/requests?{query}")
    assert response.status_code == 400
    assert field in response.json()


def test_every_bad_parameter_is_named_at_once(api_for, alice):
    response = api_for(alice).get("/api/v1/requests?from=x&status=y&request_id=z")
    assert response.status_code == 400
    assert set(response.json()) == {"from", "status", "request_id"}


def test_a_page_is_at_most_200_logs(alice, api_for):
    key = make_key(alice)
    for n in range(3):
        make_log(key, at=at(1, n))
    body = api_for(alice).get("/api/v1/requests?limit=2").json()
    assert len(body["results"]) == 2
    assert "limit=2" in body["next"] and "cursor=" in body["next"]
    # A larger limit is clamped, as the other lists do; one of more digits
    # than int() reads too.
    for limit in ("5000", "0" * 5000 + "7", "9" * 5000):
        response = api_for(alice).get(f"/api/v1/requests?limit={limit}")
        assert response.status_code == 200
        assert len(response.json()["results"]) == 3


def test_a_date_past_year_9999_is_out_of_range(api_for, alice):
    for query in ("to=9999-12-31", "to=9999-12-31T23:59:59.999999"):
        response = api_for(alice).get(f"/api/v1/requests?{query}")
        assert response.status_code == 400
        assert response.json()["to"] == [f'"{query[3:]}" is out of range.']


# --- the detail ---------------------------------------------------------------


def test_the_detail_has_tokens_and_cost_by_kind_that_sum_to_the_cost(
    world, api_for, alice
):
    one, _, logs = world
    log = logs["one-3rd"]
    body = api_for(alice).get(f"/api/v1/requests/{log.id}").json()
    assert body["tokens"] == {
        "prompt": 100,
        "uncached_prompt": 50,
        "cached_read": 40,
        "cache_write": 10,
        "completion": 20,
        "reasoning": 7,
    }
    assert body["cost_by_kind"] == {
        "input": "0.500000000",
        "cached": "0.000000001",
        "cache_write": "0.300000000",
        "output": "0.200000000",
    }
    kinds = sum(int(v.replace(".", "")) for v in body["cost_by_kind"].values())
    assert kinds == log.cost_nanos == 1_000_000_001
    # The pools: bonus first, then top-up; together the cost.
    assert (body["cost_bonus"], body["cost_top_up"], body["cost"]) == (
        "1.000000000",
        "0.000000001",
        "1.000000001",
    )
    assert (body["ttft_ms"], body["generation_ms"], body["throughput"]) == (
        180,
        2_000,
        10.0,
    )
    assert (body["streamed"], body["cancelled"], body["usage_estimated"]) == (
        True,
        True,
        True,
    )
    assert (body["key"], body["key_name"], body["status"], body["http_status"]) == (
        one.pk,
        "one",
        "error",
        499,
    )
    assert body["price"] is None  # not billed at a price version: none recorded
    assert body["bodies"] is None


def test_the_detail_names_the_price_version_it_was_billed_at(alice, api_for):
    provider = Provider.objects.create(name="openai", base_url="https://api.test/v1")
    model = CatalogModel.objects.create(
        id="openai/gpt-5-detail",
        provider=provider,
        upstream="gpt-5",
        context_length=400_000,
    )
    price = ModelPrice.objects.create(
        model=model,
        effective_from=at(1),
        input_nanos=1_250_000_000,
        cached_input_nanos=125_000_000,
        cache_write_nanos=1_500_000_000,
        output_nanos=10_000_000_000,
    )
    log = make_log(
        make_key(alice),
        at=at(2),
        model=model.id,
        upstream_model="gpt-5-2026",
        price_id=price.id,
        error="",
    )
    body = api_for(alice).get(f"/api/v1/requests/{log.id}").json()
    assert body["upstream_model"] == "gpt-5-2026"
    assert body["price"] == {
        "id": price.id,
        "model": model.id,
        "effective_from": "2026-03-01T12:00:00Z",
        "input": "1.250000000",
        "cached_input": "0.125000000",
        "cache_write": "1.500000000",
        "output": "10.000000000",
    }


def test_bodies_nested_too_deep_for_python_are_shown_as_their_text(alice, api_for):
    body_retention_set(account=alice.account, store_bodies=True, retention_days=7)
    log = make_log(make_key(alice))  # now: its bodies have not expired
    # orjson reads 1,024 levels, Python's json fewer; neither reads 5,000.
    deep = b'{"messages": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    deeper = b"[" * 5000 + b"]" * 5000
    assert bodies_keep(
        alice.account.pk,
        {"id": str(log.id), "created_at": log.created_at},
        request=deep,
        response=deeper,
    )
    response = api_for(alice).get(f"/api/v1/requests/{log.id}")
    assert response.status_code == 200
    bodies = response.json()["bodies"]
    assert (bodies["request"], bodies["response"]) == (deep.decode(), deeper.decode())


def test_the_detail_of_another_accounts_log_is_404(world, api_for, bob):
    _, _, logs = world
    client = api_for(bob)
    response = client.get(f"/api/v1/requests/{logs['one-1st'].id}")
    assert response.status_code == 404
    assert response.json() == {"detail": "No such request."}


@pytest.mark.parametrize(
    "log_id",
    [
        "not-a-uuid",
        "0192f0c1-7a3e-7b4d-9c1a",
        str(uuid.uuid4()),
        str(request_id(datetime(2026, 3, 1, tzinfo=UTC))),
        "%00",
    ],
)
def test_an_unknown_or_malformed_id_is_404(world, api_for, alice, log_id):
    response = api_for(alice).get(f"/api/v1/requests/{log_id}")
    assert response.status_code == 404
    assert "detail" in response.json()


def test_a_log_is_found_by_its_id_only_near_the_moment_the_id_says(alice, api_for):
    """A UUIDv7 id carries its moment: the lookup reads the partitions of a day
    either side of it, and finds the log there."""
    made = datetime(2026, 2, 28, 23, 59, 59, 999_000, tzinfo=UTC)
    log = make_log(make_key(alice), at=made)
    assert api_for(alice).get(f"/api/v1/requests/{log.id}").status_code == 200
    # The same id on a log written far from its moment is out of the window.
    stray = make_log(make_key(alice), at=made + timedelta(days=3), id=request_id(at(1)))
    assert api_for(alice).get(f"/api/v1/requests/{stray.id}").status_code == 404


def _kept(text: str) -> bytes:
    return zlib.compress(text.encode())


def test_the_detail_shows_a_streams_bodies_put_together(alice, api_for):
    keeping(alice)
    log = make_log(make_key(alice), at=at(1), streamed=True)
    events = (
        'data: {"id":"c1","model":"gpt","choices":[{"index":0,"delta":'
        '{"role":"assistant","content":"Hel"}}]}\n\n'
        'data: {"id":"c1","choices":[{"index":0,"delta":{"reasoning_content":'
        '"think"}}]}\n\n'
        'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"lo",'
        '"tool_calls":[{"index":0,"id":"call_1","type":"function","function":'
        '{"name":"get_weather","arguments":"{\\"ci"}}]}}]}\n\n'
        'data: {"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,'
        '"function":{"arguments":"ty\\": \\"Paris\\"}"}}]},"finish_reason":'
        '"tool_calls"}]}\n\n'
        'data: {"usage": {"prompt_tokens": 9, "completion_tokens": 4}}\n\n'
    )
    request = '{"model":"openai/gpt-5","stream":true,"messages":[]}'
    RequestBody.objects.create(
        request_id=log.id,
        account=alice.account,
        created_at=log.created_at,
        expires_at=datetime.now(UTC) + timedelta(days=1),
        request=_kept(request),
        response=_kept(events),
    )
    bodies = api_for(alice).get(f"/api/v1/requests/{log.id}").json()["bodies"]
    assert bodies["request"] == {
        "model": "openai/gpt-5",
        "stream": True,
        "messages": [],
    }
    assert bodies["events"] == events
    assert bodies["truncated"] is False
    assert bodies["response"] == {
        "id": "c1",
        "model": "gpt",
        "object": "chat.completion",
        "usage": {"prompt_tokens": 9, "completion_tokens": 4},
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello",
                    "reasoning": "think",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {
                                "name": "get_weather",
                                "arguments": '{"city": "Paris"}',
                            },
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
    }


def test_bodies_cut_short_are_shown_as_text(alice, api_for, bob):
    keeping(alice)
    log = make_log(make_key(alice), at=at(1))
    RequestBody.objects.create(
        request_id=log.id,
        account=alice.account,
        created_at=log.created_at,
        expires_at=datetime.now(UTC) + timedelta(days=1),
        request=_kept('{"model": "openai/gpt-5", "messages": [{"ro'),
        response=_kept('{"choices": []}'),
        truncated=True,
    )
    bodies = api_for(alice).get(f"/api/v1/requests/{log.id}").json()["bodies"]
    assert bodies == {
        "request": '{"model": "openai/gpt-5", "messages": [{"ro',
        "response": {"choices": []},
        "events": None,
        "truncated": True,
    }


def test_bodies_past_their_days_or_of_another_account_are_not_shown(
    alice, bob, api_for
):
    keeping(alice, bob)
    mine = make_log(make_key(alice), at=at(1))
    RequestBody.objects.create(
        request_id=mine.id,
        account=alice.account,
        created_at=mine.created_at,
        expires_at=datetime.now(UTC) - timedelta(seconds=1),
        request=_kept("{}"),
        response=_kept("{}"),
    )
    assert api_for(alice).get(f"/api/v1/requests/{mine.id}").json()["bodies"] is None
    # A body row that names another account is never shown with this log.
    other = make_log(make_key(alice), at=at(2))
    RequestBody.objects.create(
        request_id=other.id,
        account=bob.account,
        created_at=other.created_at,
        expires_at=datetime.now(UTC) + timedelta(days=1),
        request=_kept("{}"),
        response=_kept("{}"),
    )
    assert api_for(alice).get(f"/api/v1/requests/{other.id}").json()["bodies"] is None


def keeping(*users) -> None:
    """Their accounts keep bodies (the detail shows none otherwise)."""
    for user in users:
        body_retention_set(account=user.account, store_bodies=True, retention_days=7)


def test_bodies_are_shown_only_while_the_switch_is_on(alice, api_for):
    keeping(alice)
    log = make_log(make_key(alice), at=at(1))
    RequestBody.objects.create(
        request_id=log.id,
        account=alice.account,
        created_at=log.created_at,
        expires_at=datetime.now(UTC) + timedelta(days=1),
        request=_kept("{}"),
        response=_kept('{"choices": []}'),
    )
    url = f"/api/v1/requests/{log.id}"
    assert api_for(alice).get(url).json()["bodies"]["response"] == {"choices": []}
    # Turned off: gone at once for the customer, before the purge has run.
    body_retention_set(account=alice.account, store_bodies=False, retention_days=7)
    assert RequestBody.objects.filter(request_id=log.id).exists()
    assert api_for(alice).get(url).json()["bodies"] is None
