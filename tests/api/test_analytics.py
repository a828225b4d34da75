"""GET /api/v1/analytics/cost: an account's spend over a UTC range by hour, day
or month, grouped by model, key, provider or kind of token, read from the hourly
rollups that the settlement writes (written here by that same statement,
tests/support/usage.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from apikeys.models import KeyKind
from apikeys.services import key_delete
from money import nanos_to_usd, usd_to_nanos
from proxy.analytics import half_even_div
from proxy.filters import Refused, moment_parse
from proxy.pricing import Price
from tests.support.keys import bearer, make_key
from tests.support.usage import usage_commit, usage_item

URL = "/api/v1/analytics/cost"
# A second model, priced apart from the test model.
MINI = Price(
    input=usd_to_nanos("0.15"),
    cached_input=usd_to_nanos("0.075"),
    cache_write=0,
    output=usd_to_nanos("0.6"),
)
TOTAL_FIELDS = {
    "cost",
    "input_cost",
    "output_cost",
    "other_cost",
    "requests",
    "tokens",
    "avg_cost_per_request",
    "avg_cost_per_million_tokens",
}


def at(month: int, day: int, hour: int = 12, minute: int = 0, second: int = 0):
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


def api(user) -> APIClient:
    secret = make_key(user, kind=KeyKind.MANAGEMENT, name="reports").secret
    return bearer(secret)


def get(client: APIClient, **query) -> dict:
    response = client.get(URL, query)
    assert response.status_code == 200, response.content
    return response.json()


def usd(nanos: int) -> str:
    return nanos_to_usd(nanos)


@pytest.fixture
def world(alice, bob):
    """Alice's two keys over two models at the edges of days, an error, a day
    before and a month after; bob's one request."""
    one, two = make_key(alice, name="one"), make_key(alice, name="two")
    items = {
        "feb-28": usage_item(
            one, at=at(2, 28), prompt_tokens=100, completion_tokens=10
        ),
        "mar-1-gpt": usage_item(
            one,
            at=at(3, 1, 10, 30),
            prompt_tokens=1000,
            cached_tokens=200,
            cache_write_tokens=100,
            completion_tokens=50,
            reasoning_tokens=10,
        ),
        "mar-1-last-second": usage_item(
            two,
            at=at(3, 1, 23, 59, 59),
            model="acme/mini",
            provider="acme",
            price=MINI,
            prompt_tokens=300,
            cached_tokens=100,
            completion_tokens=20,
        ),
        "mar-2-midnight": usage_item(
            one,
            at=at(3, 2, 0),
            model="acme/mini",
            provider="acme",
            price=MINI,
            prompt_tokens=400,
            completion_tokens=30,
        ),
        "mar-2-error": usage_item(two, at=at(3, 2, 0, 0, 1), status=502),
        "apr-5": usage_item(
            one, at=at(4, 5), prompt_tokens=2000, completion_tokens=100
        ),
    }
    usage_commit(alice.account.id, list(items.values()))
    usage_commit(
        bob.account.id,
        [
            usage_item(
                make_key(bob), at=at(3, 1), prompt_tokens=5000, completion_tokens=500
            )
        ],
    )
    return one.api_key, two.api_key, items


def totals_of(*items: dict) -> dict:
    """The totals the API should answer for these requests, from their logs'
    fields."""
    cost = sum(i["cost"] for i in items)
    requests = len(items)
    tokens = sum(i["prompt_tokens"] + i["completion_tokens"] for i in items)
    cached = sum(i["cached_cost_nanos"] + i["cache_write_cost_nanos"] for i in items)
    return {
        "cost": usd(cost),
        "input_cost": usd(sum(i["input_cost_nanos"] for i in items)),
        "output_cost": usd(cost - sum(i["input_cost_nanos"] for i in items) - cached),
        "other_cost": usd(cached),
        "requests": requests,
        "tokens": tokens,
        "avg_cost_per_request": usd(half_even_div(cost, requests))
        if requests
        else None,
        "avg_cost_per_million_tokens": (
            usd(half_even_div(cost * 10**6, tokens)) if tokens else None
        ),
    }


def point(t: datetime, group: str, *items: dict, label: str | None = None) -> dict:
    return {
        "t": t.isoformat().replace("+00:00", "Z"),
        "group": group,
        "label": group if label is None else label,
        "cost": usd(sum(i["cost"] for i in items)),
        "requests": len(items),
        "input_tokens": sum(i["prompt_tokens"] for i in items),
        "output_tokens": sum(i["completion_tokens"] for i in items),
    }


def test_two_days_by_day_and_model(world, alice):
    _, _, items = world
    body = get(api(alice), **{"from": "2026-03-01", "to": "2026-03-02"})
    assert set(body) == {
        "from",
        "to",
        "granularity",
        "group_by",
        "totals",
        "previous",
        "buckets",
        "series",
        "models",
    }
    # The "to" date is included whole: the range ends when it does.
    assert (body["from"], body["to"]) == (
        "2026-03-01T00:00:00Z",
        "2026-03-03T00:00:00Z",
    )
    assert (body["granularity"], body["group_by"]) == ("day", "model")
    assert body["buckets"] == ["2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"]
    gpt, last, midnight, error = (
        items[name]
        for name in ("mar-1-gpt", "mar-1-last-second", "mar-2-midnight", "mar-2-error")
    )
    assert body["totals"] == totals_of(gpt, last, midnight, error)
    # 700 uncached × $1.25 + 200 cached × $0.125 + 100 written × $1.5 + 50 × $10
    # per 1M, and three requests of the second model, one of them an error.
    assert gpt["cost"] == 875_000 + 25_000 + 150_000 + 500_000
    assert body["totals"]["other_cost"] == usd(
        25_000 + 150_000 + last["cached_cost_nanos"]
    )
    assert body["series"] == [
        point(at(3, 1, 0), "acme/mini", last),
        point(at(3, 1, 0), "fake/gpt", gpt),
        point(at(3, 2, 0), "acme/mini", midnight),
        point(at(3, 2, 0), "fake/gpt", error),
    ]
    assert body["models"] == [
        {
            "model": "fake/gpt",
            "calls": 2,
            "input_tokens": 1000,
            "output_tokens": 50,
            "cost": usd(gpt["cost"]),
            "cost_per_call": usd(half_even_div(gpt["cost"], 2)),
        },
        {
            "model": "acme/mini",
            "calls": 2,
            "input_tokens": 700,
            "output_tokens": 50,
            "cost": usd(last["cost"] + midnight["cost"]),
            "cost_per_call": usd(half_even_div(last["cost"] + midnight["cost"], 2)),
        },
    ]


def test_by_hour_the_last_second_of_a_day_and_midnight_fall_apart(world, alice):
    _, _, items = world
    body = get(
        api(alice),
        **{
            "from": "2026-03-01T23:00:00Z",
            "to": "2026-03-02T01:00:00Z",
            "granularity": "hour",
        },
    )
    assert body["buckets"] == ["2026-03-01T23:00:00Z", "2026-03-02T00:00:00Z"]
    assert body["series"] == [
        point(at(3, 1, 23), "acme/mini", items["mar-1-last-second"]),
        point(at(3, 2, 0), "acme/mini", items["mar-2-midnight"]),
        point(at(3, 2, 0), "fake/gpt", items["mar-2-error"]),
    ]
    # The hour ending at 23:00 has nothing; the day's usage before it is apart.
    early = get(
        api(alice),
        **{"from": "2026-03-01T22:00+00:00", "to": "2026-03-01T23:00+00:00"},
    )
    assert early["totals"]["requests"] == 0
    assert early["series"] == []
    # An offset on a whole hour is fine: 01:00+01:00 is midnight UTC.
    shifted = get(
        api(alice),
        **{
            "from": "2026-03-02T01:00:00+01:00",
            "to": "2026-03-02T02:00:00+01:00",
            "granularity": "hour",
        },
    )
    assert shifted["from"] == "2026-03-02T00:00:00Z"
    assert shifted["totals"] == totals_of(items["mar-2-midnight"], items["mar-2-error"])


def test_by_month_buckets_are_calendar_months(world, alice):
    _, _, items = world
    body = get(
        api(alice),
        **{"from": "2026-02-15", "to": "2026-04-30", "granularity": "month"},
    )
    assert body["buckets"] == [
        "2026-02-01T00:00:00Z",
        "2026-03-01T00:00:00Z",
        "2026-04-01T00:00:00Z",
    ]
    march = [
        items[name]
        for name in ("mar-1-gpt", "mar-1-last-second", "mar-2-midnight", "mar-2-error")
    ]
    assert body["series"] == [
        point(at(2, 1, 0), "fake/gpt", items["feb-28"]),
        point(at(3, 1, 0), "acme/mini", *march[1:3]),
        point(at(3, 1, 0), "fake/gpt", march[0], march[3]),
        point(at(4, 1, 0), "fake/gpt", items["apr-5"]),
    ]
    assert body["totals"] == totals_of(items["feb-28"], *march, items["apr-5"])


def test_by_key_the_label_is_the_keys_name_even_once_deleted(world, alice):
    one, two, items = world
    key_delete(api_key=two)
    body = get(
        api(alice), **{"from": "2026-03-01", "to": "2026-03-02", "group_by": "key"}
    )
    assert body["series"] == [
        point(at(3, 1, 0), str(one.pk), items["mar-1-gpt"], label="one"),
        point(at(3, 1, 0), str(two.pk), items["mar-1-last-second"], label="two"),
        point(at(3, 2, 0), str(one.pk), items["mar-2-midnight"], label="one"),
        point(at(3, 2, 0), str(two.pk), items["mar-2-error"], label="two"),
    ]


def test_by_provider(world, alice):
    _, _, items = world
    body = get(
        api(alice),
        **{"from": "2026-03-01", "to": "2026-03-01", "group_by": "provider"},
    )
    assert body["series"] == [
        point(at(3, 1, 0), "acme", items["mar-1-last-second"]),
        point(at(3, 1, 0), "fake", items["mar-1-gpt"]),
    ]


def test_by_type_each_bucket_has_a_point_per_kind_that_sum_to_its_cost(world, alice):
    _, _, items = world
    gpt, last = items["mar-1-gpt"], items["mar-1-last-second"]
    body = get(
        api(alice),
        **{"from": "2026-03-01", "to": "2026-03-01", "group_by": "type"},
    )
    day = "2026-03-01T00:00:00Z"
    both = (gpt, last)

    def kind(group, label, cost, input_tokens=0, output_tokens=0):
        return {
            "t": day,
            "group": group,
            "label": label,
            "cost": usd(cost),
            "requests": 2,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
        }

    assert body["series"] == [
        # Uncached: 1000 - 200 - 100 and 300 - 100.
        kind("input", "Input", sum(i["input_cost_nanos"] for i in both), 700 + 200),
        kind("cached", "Cached input", sum(i["cached_cost_nanos"] for i in both), 300),
        kind("cache_write", "Cache write", 150_000, 100),
        kind(
            "output",
            "Output",
            sum(
                i["cost"]
                - i["input_cost_nanos"]
                - i["cached_cost_nanos"]
                - i["cache_write_cost_nanos"]
                for i in both
            ),
            output_tokens=70,
        ),
    ]
    assert sum(usd_to_nanos(p["cost"]) for p in body["series"]) == (
        gpt["cost"] + last["cost"]
    )


def test_by_type_input_tokens_are_never_negative(alice):
    # Upstream reported more cached tokens than prompt tokens.
    odd = usage_item(make_key(alice), at=at(3, 1), prompt_tokens=10, cached_tokens=50)
    usage_commit(alice.account.id, [odd])
    body = get(
        api(alice), **{"from": "2026-03-01", "to": "2026-03-01", "group_by": "type"}
    )
    tokens = {p["group"]: p["input_tokens"] for p in body["series"]}
    assert tokens == {"input": 0, "cached": 50, "cache_write": 0, "output": 0}


def test_the_previous_period_is_as_long_and_just_before(world, alice):
    _, _, items = world
    body = get(api(alice), **{"from": "2026-03-01", "to": "2026-03-02"})
    previous = body["previous"]
    assert (previous["from"], previous["to"]) == (
        "2026-02-27T00:00:00Z",
        "2026-03-01T00:00:00Z",
    )
    assert {k: v for k, v in previous.items() if k not in ("from", "to")} == (
        totals_of(items["feb-28"])
    )


def test_filters_by_key_and_model(world, alice, bob):
    one, two, items = world
    client = api(alice)
    march = {"from": "2026-03-01", "to": "2026-03-31"}
    by_key = get(client, **march, key=str(two.pk))
    assert by_key["totals"] == totals_of(
        items["mar-1-last-second"], items["mar-2-error"]
    )
    by_model = get(client, **march, model="acme/mini")
    assert by_model["totals"] == totals_of(
        items["mar-1-last-second"], items["mar-2-midnight"]
    )
    assert [m["model"] for m in by_model["models"]] == ["acme/mini"]
    both = get(client, **march, model="acme/mini", key=str(one.pk))
    assert both["totals"] == totals_of(items["mar-2-midnight"])
    by_provider = get(client, **march, provider="fake")
    assert by_provider["totals"] == totals_of(items["mar-1-gpt"], items["mar-2-error"])
    # Several keys, as the request logs take them.
    keys = get(client, **march, key=f"{one.pk},{two.pk}")
    assert keys["totals"]["requests"] == 4
    repeated = client.get(URL, {**march, "key": [str(one.pk), str(two.pk)]})
    assert repeated.json()["totals"] == keys["totals"]
    # Filters apply to the previous period too: March 2nd to 31st.
    april = get(client, **{"from": "2026-04-01", "to": "2026-04-30"}, key=str(two.pk))
    assert april["previous"]["from"] == "2026-03-02T00:00:00Z"
    assert april["previous"]["requests"] == 1
    assert april["totals"]["requests"] == 0


def test_another_accounts_key_finds_nothing_and_each_sees_only_their_own(
    world, alice, bob
):
    bobs_key = make_key(bob)
    march = {"from": "2026-03-01", "to": "2026-03-31"}
    nothing = get(api(alice), **march, key=str(bobs_key.api_key.pk))
    assert nothing["series"] == [] and nothing["models"] == []
    assert nothing["totals"] == totals_of()
    assert nothing["totals"]["avg_cost_per_request"] is None
    assert nothing["totals"]["avg_cost_per_million_tokens"] is None
    bobs = get(api(bob), **march)
    assert bobs["totals"]["requests"] == 1
    assert bobs["totals"]["tokens"] == 5500
    assert [m["model"] for m in bobs["models"]] == ["fake/gpt"]


def test_the_defaults_are_the_last_30_days_by_day_and_model(alice):
    key = make_key(alice)
    now = datetime.now(UTC)
    item = usage_item(key, at=now, prompt_tokens=10, completion_tokens=3)
    old = usage_item(key, at=now - timedelta(days=31), prompt_tokens=7)
    usage_commit(alice.account.id, [item, old])
    body = get(api(alice))
    end = datetime.combine(now.date(), datetime.min.time(), tzinfo=UTC) + timedelta(
        days=1
    )
    assert body["to"] == end.isoformat().replace("+00:00", "Z")
    assert body["from"] == (end - timedelta(days=30)).isoformat().replace("+00:00", "Z")
    assert (body["granularity"], body["group_by"]) == ("day", "model")
    assert len(body["buckets"]) == 30
    assert body["totals"] == totals_of(item)
    assert body["previous"]["requests"] == 1


def test_the_console_session_reads_it_too_and_nobody_else(world, alice):
    client = APIClient()
    assert client.get(URL).status_code == 401
    client.force_login(alice)
    assert client.get(URL, {"from": "2026-03-01"}).json()["totals"]["requests"] >= 4


def test_averages_round_half_to_even_to_the_nano():
    assert [half_even_div(n, 2) for n in (1, 3, 5, 7)] == [0, 2, 2, 4]
    assert half_even_div(10, 3) == 3 and half_even_div(20, 3) == 7
    assert half_even_div(0, 5) == 0


def test_averages_are_exact_nanos(alice):
    key = make_key(alice)
    # Three requests of 1 nano (a prompt token at $0.001/1M is 0.001 nano,
    # rounded up once per request) and 7 tokens: $0.000000001 a request on
    # average, 3 / 7 nano a token → 428,571.43 nanos per 1M tokens.
    cheap = Price(input=1_000, cached_input=0, cache_write=0, output=1_000)
    usage_commit(
        alice.account.id,
        [usage_item(key, at=at(3, 5), price=cheap, prompt_tokens=p) for p in (1, 2, 4)],
    )
    body = get(api(alice), **{"from": "2026-03-05", "to": "2026-03-05"})
    assert body["totals"]["cost"] == "0.000000003"
    assert body["totals"]["avg_cost_per_request"] == "0.000000001"
    assert body["totals"]["avg_cost_per_million_tokens"] == "0.000428571"


def test_the_range_is_read_as_the_logs_read_it_by_the_hour():
    """One parser for both: a date is its whole day in each; a date-time ``to``
    is inclusive in the logs, exclusive and on a whole hour in analytics."""
    for hourly in (False, True):
        assert moment_parse("2026-03-01", end=False, hourly=hourly) == at(3, 1, 0)
        assert moment_parse("2026-03-01", end=True, hourly=hourly) == at(3, 2, 0)
        assert moment_parse("", end=True, hourly=hourly) is None
        with pytest.raises(Refused, match="out of range"):
            moment_parse("9999-12-31", end=True, hourly=hourly)
    to = "2026-03-01T10:00:00+01:00"
    assert moment_parse(to, end=True) == at(3, 1, 9) + timedelta(microseconds=1)
    assert moment_parse(to, end=True, hourly=True) == at(3, 1, 9)
    assert moment_parse("2026-03-01T09:30Z", end=False) == at(3, 1, 9, 30)
    with pytest.raises(Refused, match="not on a whole hour"):
        moment_parse("2026-03-01T09:30Z", end=False, hourly=True)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"granularity": "week"}, "granularity"),
        ({"group_by": "colour"}, "group_by"),
        ({"from": "2026-03-01T10:30:00Z"}, "from"),
        ({"from": "2026-03-01T10:00:00.5Z"}, "from"),
        ({"to": "2026-03-01T10:00:00+05:30"}, "to"),
        ({"from": "2026-03-01", "to": "2026-02-28"}, "to"),
        ({"from": "2026-03-01T10:00Z", "to": "2026-03-01T10:00Z"}, "to"),
        ({"from": "2025-01-01", "to": "2026-03-01"}, "to"),
        ({"from": "2020-01-01"}, "from"),
        ({"from": "2999-01-01"}, "from"),
        (
            {"from": "2026-01-01", "to": "2026-03-01", "granularity": "hour"},
            "granularity",
        ),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-45"}, "to"),
        ({"to": "9999-12-31"}, "to"),
        ({"from": "0001-01-01", "to": "0001-01-02"}, "from"),
        ({"key": "abc"}, "key"),
        ({"key": "0"}, "key"),
        ({"model": "m" * 101}, "model"),
        ({"model": "\x00"}, "model"),
        ({"provider": "p" * 51}, "provider"),
        ({"key": "1,x"}, "key"),
    ],
)
def test_bad_parameters_are_400_naming_them(alice, query, field):
    response = api(alice).get(URL, query)
    assert response.status_code == 400, response.content
    body = response.json()
    assert list(body) == [field], body
    assert body[field][0]
