"""Cursor pages of GET /api/v1/requests, and their count.

A walk through the pages sees every log once, in order, while new logs arrive
between the pages; ``previous`` walks back to the newest. The count comes from
the hourly rollups for whole hours and from the logs for the hours at the ends
of the range, and equals the logs' own count whatever the range."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.http import QueryDict
from rest_framework.test import APIClient

from proxy.filters import log_filters_from
from proxy.models import RequestLog, UsageRollup
from proxy.selectors import request_logs_count, request_logs_matching
from tests.support.keys import make_key, make_log

BASE = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def client(alice) -> APIClient:
    client = APIClient()
    client.force_login(alice)
    return client


def walk(client, url: str, link: str) -> list[list[str]]:
    """The ids of every page from ``url`` on, following ``link``."""
    pages = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        pages.append([row["id"] for row in body["results"]])
        url = body[link]
    return pages


def newest_first(logs) -> list[str]:
    ordered = sorted(logs, key=lambda log: (log.created_at, log.id), reverse=True)
    return [str(log.id) for log in ordered]


def test_pages_never_repeat_or_skip_a_log_while_new_ones_arrive(alice, client):
    key = make_key(alice)
    # Three logs a minute: rows of one moment are ordered by their ids.
    old = [make_log(key, at=BASE + timedelta(minutes=n // 3)) for n in range(30)]
    arrived = []
    seen: list[str] = []
    url = "/api/v1/requests?limit=4"
    while url:
        body = client.get(url).json()
        seen += [row["id"] for row in body["results"]]
        assert body["count"] == len(old) + len(arrived)
        # Requests keep coming while the pages are read.
        arrived.append(make_log(key))
        arrived.append(make_log(key, at=datetime.now(UTC) + timedelta(seconds=1)))
        url = body["next"]
    assert seen == newest_first(old)

    # Back from the last page to the newest: every log once, the new ones too.
    back = walk(client, body["previous"], "previous")
    ids = [i for page in reversed(back) for i in page]
    ids += [row["id"] for row in body["results"]]
    assert ids == newest_first(old + arrived)


def test_previous_of_the_second_page_is_the_first(alice, client):
    key = make_key(alice)
    for n in range(7):
        make_log(key, at=BASE + timedelta(seconds=n))
    first = client.get("/api/v1/requests?limit=3&model=openai/gpt-5").json()
    second = client.get(first["next"]).json()
    again = client.get(second["previous"]).json()
    assert again["results"] == first["results"]
    # The links keep the filters and the page size.
    assert "model=openai%2Fgpt-5" in second["previous"]
    assert "limit=3" in second["previous"]
    third = client.get(second["next"]).json()
    assert len(third["results"]) == 1
    assert third["next"] is None
    assert [r["id"] for r in again["results"] + second["results"]] + [
        third["results"][0]["id"]
    ] == [str(log.id) for log in RequestLog.objects.order_by("-created_at", "-id")]


def test_a_deep_page_is_read_from_the_index(alice, client):
    """The page's query starts at the cursor's row in log_account_time: no
    offset, no sort."""
    key = make_key(alice)
    for n in range(5):
        make_log(key, at=BASE + timedelta(days=n * 20))
    body = client.get("/api/v1/requests?limit=2").json()
    cursor = body["next"]
    with _captured() as queries:
        assert client.get(cursor).status_code == 200
    page = next(q for q in queries if "proxy_requestlog" in q and "LIMIT 3" in q)
    assert "OFFSET" not in page
    with connection.cursor() as db:
        db.execute("SET enable_seqscan = off")
        db.execute(f"EXPLAIN {page}")
        plan = "\n".join(row[0] for row in db.fetchall())
        db.execute("RESET enable_seqscan")
    assert "account_id_created_at_id_idx" in plan
    assert "ROW(created_at, id) <" in plan
    assert "Sort " not in plan.replace("Sort Key", "")


class _captured:
    def __enter__(self):
        from django.test.utils import CaptureQueriesContext

        self.context = CaptureQueriesContext(connection)
        self.context.__enter__()
        return self

    def __exit__(self, *exc):
        self.context.__exit__(*exc)

    def __iter__(self):
        return (q["sql"] for q in self.context.captured_queries)


# --- counts ---------------------------------------------------------------------


@pytest.fixture
def spread(alice, bob):
    """Alice's logs over two days at random minutes, by two keys, two models,
    some failed; and bob's, which are never counted for her."""
    rng = random.Random(9)
    one, two = make_key(alice), make_key(alice)
    for _ in range(160):
        make_log(
            rng.choice([one, two]),
            at=BASE + timedelta(minutes=rng.randrange(0, 2 * 24 * 60)),
            model=rng.choice(["openai/gpt-5", "openai/gpt-5-mini"]),
            status=rng.choice([200, 200, 200, 429, 502]),
            finish_reason=rng.choice(["stop", "length"]),
        )
    other = make_key(bob)
    for n in range(10):
        make_log(other, at=BASE + timedelta(hours=n * 3))
    return one.api_key, two.api_key, rng


def _moment(rng) -> str:
    at = BASE + timedelta(seconds=rng.randrange(-3600, 2 * 24 * 3600 + 3600))
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_counts_are_exact_whatever_the_range_and_filters(alice, spread):
    one, two, rng = spread
    for _ in range(60):
        query = QueryDict(mutable=True)
        if rng.random() < 0.8:
            query["from"] = _moment(rng)
        if rng.random() < 0.8:
            query["to"] = _moment(rng)
        if "from" in query and "to" in query and query["to"] <= query["from"]:
            query["from"], query["to"] = query["to"], query["from"]
            if query["to"] == query["from"]:
                continue
        if rng.random() < 0.3:
            query["key"] = str(rng.choice([one, two]).pk)
        if rng.random() < 0.3:
            query["model"] = "openai/gpt-5-mini"
        if rng.random() < 0.3:
            query["status"] = rng.choice(["ok", "error"])
        if rng.random() < 0.1:
            query["finish_reason"] = "stop"
        filters = log_filters_from(query)
        expected = request_logs_matching(account=alice.account, filters=filters).count()
        counted = request_logs_count(account=alice.account, filters=filters)
        assert counted == expected, query.urlencode()


def test_the_count_reads_whole_hours_from_the_rollups(alice, spread):
    """A rollup that disagreed with the logs would show: the count of a range of
    whole hours is the rollups', and only the ends of a range come from logs."""
    UsageRollup.objects.filter(account=alice.account).update(requests=0, errors=0)
    hours = log_filters_from(QueryDict("from=2026-03-01T05:00Z&to=2026-03-01T08:00Z"))
    # 05:00 to 08:00 inclusive: three whole hours, and the logs of 08:00:00.
    at_eight = log_filters_from(
        QueryDict("from=2026-03-01T08:00Z&to=2026-03-01T08:00Z")
    )
    assert request_logs_count(account=alice.account, filters=hours) == (
        request_logs_matching(account=alice.account, filters=at_eight).count()
    )
    assert request_logs_matching(account=alice.account, filters=hours).count() > 0


def test_logs_deleted_by_retention_are_not_counted_though_rollups_stay(
    alice, client, spread
):
    cut = BASE + timedelta(hours=30, minutes=17)
    RequestLog.objects.filter(created_at__lt=cut).delete()
    assert UsageRollup.objects.filter(account=alice.account, hour__lt=cut).exists()
    remaining = RequestLog.objects.filter(account=alice.account).count()
    assert client.get("/api/v1/requests").json()["count"] == remaining
    assert client.get("/api/v1/requests?from=2026-02-01").json()["count"] == remaining
    error = client.get("/api/v1/requests?status=error").json()["count"]
    assert error == (
        RequestLog.objects.filter(account=alice.account, status__gte=400).count()
    )
    # Once every log is gone, nothing is counted.
    RequestLog.objects.all().delete()
    assert client.get("/api/v1/requests").json()["count"] == 0
