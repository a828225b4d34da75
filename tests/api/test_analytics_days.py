"""Cost analytics and the logs' count read whole days from the daily rollups
and the hours of the days a range enters or leaves midway from the hourly ones:
whatever the range (any whole hours), granularity, grouping and filter, the
report equals the request logs' sums to the nano, and a day row is what a
whole day shows."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import F

from proxy.analytics import Usage, bucket_start, cost_report
from proxy.filters import LogFilters
from proxy.models import RequestLog, UsageRollup, UsageRollupDay
from proxy.rollups import usage_fold
from proxy.selectors import request_logs_count, request_logs_matching
from tests.support.keys import make_key
from tests.support.usage import usage_commit, usage_item

# Across a month's end, so that buckets by month split the range too.
BASE = datetime(2026, 3, 29, tzinfo=UTC)
SPAN_HOURS = 6 * 24
MODELS = [("fake/gpt", "fake"), ("acme/mini", "acme")]


@pytest.fixture(params=["unfolded", "half folded", "folded"])
def usage(request, alice, bob):
    """Alice's calls over six days at random seconds, by two keys on two
    models from two providers, some failed; and one of bob's. What the
    batches added to the rollups is still all in deltas, half folded into the
    rollups, or all folded: readers count the same either way."""
    rng = random.Random(11)
    keys = [make_key(alice), make_key(alice)]
    items = []
    for _ in range(150):
        model, provider = rng.choice(MODELS)
        prompt = rng.randrange(1, 3000)
        items.append(
            usage_item(
                rng.choice(keys),
                at=BASE + timedelta(seconds=rng.randrange(SPAN_HOURS * 3600)),
                model=model,
                provider=provider,
                status=rng.choice([200, 200, 200, 502]),
                prompt_tokens=prompt,
                cached_tokens=rng.randrange(prompt // 2),
                completion_tokens=rng.randrange(500),
            )
        )
    usage_commit(alice.account.pk, items[:75])
    if request.param != "unfolded":
        usage_fold()
    usage_commit(alice.account.pk, items[75:])
    usage_commit(
        bob.account.pk,
        [usage_item(make_key(bob), at=BASE + timedelta(hours=30), prompt_tokens=9)],
    )
    if request.param == "folded":
        usage_fold()
    return [key.api_key for key in keys], rng


def _usage(logs) -> Usage:
    return sum(
        (
            Usage(
                1,
                log.prompt_tokens,
                log.cached_tokens,
                log.cache_write_tokens,
                log.completion_tokens,
                log.cost_nanos,
                log.input_cost_nanos,
                log.cached_cost_nanos,
                log.cache_write_cost_nanos,
                log.output_cost_nanos,
            )
            for log in logs
        ),
        Usage(),
    )


def _expected(account, since, until, granularity, group_by, key_ids, model):
    """(totals, previous, models, series cells) from the logs themselves."""
    logs = RequestLog.objects.filter(account=account)
    if key_ids:
        logs = logs.filter(api_key_id__in=key_ids)
    if model:
        logs = logs.filter(model=model)
    inside = list(logs.filter(created_at__gte=since, created_at__lt=until))
    previous = logs.filter(
        created_at__gte=since - (until - since), created_at__lt=since
    )
    by_model, cells = defaultdict(list), defaultdict(list)
    for log in inside:
        by_model[log.model].append(log)
        group = str(log.api_key_id) if group_by == "key" else getattr(log, group_by)
        cells[(bucket_start(log.created_at, granularity), group)].append(log)
    return (
        _usage(inside),
        _usage(previous),
        {name: _usage(rows) for name, rows in by_model.items()},
        {
            cell: (usage.cost, usage.requests, usage.prompt_tokens)
            for cell, usage in ((cell, _usage(rows)) for cell, rows in cells.items())
        },
    )


def test_reports_equal_the_logs_whatever_the_range(alice, usage):
    keys, rng = usage
    for _ in range(50):
        start = rng.randrange(-30, SPAN_HOURS + 6)
        since = BASE + timedelta(hours=start)
        granularity = rng.choice(["hour", "day", "day", "month"])
        longest = 31 * 24 if granularity == "hour" else 9 * 24
        until = since + timedelta(hours=rng.randrange(1, longest))
        group_by = rng.choice(["model", "key", "provider"])
        key_ids = (rng.choice(keys).pk,) if rng.random() < 0.3 else ()
        model = "acme/mini" if rng.random() < 0.3 else None

        report = cost_report(
            account=alice.account,
            since=since,
            until=until,
            granularity=granularity,
            group_by=group_by,
            key_ids=key_ids,
            model=model,
        )

        totals, previous, models, cells = _expected(
            alice.account, since, until, granularity, group_by, key_ids, model
        )
        shown = f"{since:%m-%d %H}h..{until:%m-%d %H}h by {granularity}, {group_by}"
        assert report.totals == totals, shown
        assert report.previous == previous, shown
        assert {row.model: row.usage for row in report.models} == models, shown
        assert {
            (p.t, p.group): (p.cost, p.requests, p.input_tokens) for p in report.series
        } == cells, shown


def test_whole_days_are_read_from_the_daily_rollups(alice, usage):
    """A day row that disagreed with its hours would show: whole days are the
    day rows', the hours of a day entered midway are the hourly rows'."""
    day = BASE.date() + timedelta(days=2)
    UsageRollupDay.objects.filter(account=alice.account, day=day).update(
        cost_nanos=F("cost_nanos") + 7, requests=F("requests") + 1000
    )
    rows = UsageRollupDay.objects.filter(account=alice.account, day=day).count()
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    logs = RequestLog.objects.filter(account=alice.account)

    def report(since, until, granularity="day"):
        return cost_report(
            account=alice.account, since=since, until=until, granularity=granularity
        )

    def logged(since, until):
        return _usage(logs.filter(created_at__gte=since, created_at__lt=until))

    whole = (midnight - timedelta(hours=5), midnight + timedelta(days=1, hours=3))
    assert report(*whole).totals.cost == logged(*whole).cost + 7 * rows
    assert report(*whole).totals.requests == logged(*whole).requests + 1000 * rows
    # A series by hour reads the hours (its totals, as any report's, the days).
    hours = report(*whole, granularity="hour")
    assert sum(point.cost for point in hours.series) == logged(*whole).cost
    assert hours.totals.cost == logged(*whole).cost + 7 * rows
    # Within the day, the hours are read.
    inside = (midnight + timedelta(hours=1), midnight + timedelta(hours=23))
    assert report(*inside).totals == logged(*inside)
    # The period before a range holding the day reads it too.
    after = (midnight + timedelta(days=1), midnight + timedelta(days=2))
    assert report(*after).previous.cost == logged(midnight, after[0]).cost + 7 * rows

    # The logs' count too.
    count = LogFilters(since=whole[0] + timedelta(seconds=1), before=whole[1])
    assert request_logs_count(account=alice.account, filters=count) == (
        request_logs_matching(account=alice.account, filters=count).count()
        + 1000 * rows
    )
    count = LogFilters(since=inside[0], before=inside[1] + timedelta(minutes=3))
    assert request_logs_count(account=alice.account, filters=count) == (
        request_logs_matching(account=alice.account, filters=count).count()
    )


def test_counts_over_days_equal_the_logs_whatever_the_range(alice, usage):
    keys, rng = usage
    cut = BASE + timedelta(hours=20, seconds=rng.randrange(3600))
    for retained in (False, True):
        if retained:
            # Retention deletes logs and keeps their rollups.
            RequestLog.objects.filter(created_at__lt=cut).delete()
        for _ in range(40):

            def moment():
                if rng.random() < 0.15:
                    return None
                seconds = rng.randrange(-86_400, (SPAN_HOURS + 24) * 3600)
                if rng.random() < 0.3:
                    seconds -= seconds % 3600  # on a whole hour
                return BASE + timedelta(seconds=seconds)

            since, before = moment(), moment()
            if since and before and before <= since:
                since, before = before, since + timedelta(seconds=1)
            filters = LogFilters(
                since=since,
                before=before,
                key_ids=(rng.choice(keys).pk,) if rng.random() < 0.3 else (),
                model="acme/mini" if rng.random() < 0.3 else None,
                provider="fake" if rng.random() < 0.2 else None,
                status=rng.choice([None, None, "ok", "error"]),
            )
            assert request_logs_count(account=alice.account, filters=filters) == (
                request_logs_matching(account=alice.account, filters=filters).count()
            ), filters


def test_a_day_goes_with_its_last_hour(alice, usage):
    """Days are the hours grouped by day, row for row: a day whose hours were
    all deleted or moved away is no row of zeros."""
    usage_fold()
    hourly = UsageRollup.objects.filter(account=alice.account).order_by("hour").first()
    day = hourly.hour.astimezone(UTC).date()
    same = UsageRollup.objects.filter(
        account=alice.account,
        api_key=hourly.api_key,
        model=hourly.model,
        provider=hourly.provider,
        hour__gte=datetime(day.year, day.month, day.day, tzinfo=UTC),
        hour__lt=datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1),
    )
    assert same.count() > 1
    days = UsageRollupDay.objects.filter(
        account=alice.account,
        day=day,
        api_key=hourly.api_key,
        model=hourly.model,
        provider=hourly.provider,
    )
    *others, last = same.order_by("hour")
    UsageRollup.objects.filter(pk__in=[row.pk for row in others]).delete()
    assert days.get().requests == last.requests
    last.hour -= timedelta(days=1)  # moved to the day before
    last.save()
    assert not days.exists()
    assert (
        UsageRollupDay.objects.get(
            account=alice.account,
            day=day - timedelta(days=1),
            api_key=hourly.api_key,
            model=hourly.model,
            provider=hourly.provider,
        ).requests
        == last.requests
    )
