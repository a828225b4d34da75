"""Request logs over time (proxy/retention.py): the month partitions made ahead,
a log of a month without one waiting in the default partition until it is
made, and retention that drops whole months, deletes only the logs that are
due, keeps the rollups and can run twice.

Logs are written by the settlement's own statement (tests/support/usage.py) at
moments long past, whose month partitions these tests make and drop inside
their transaction (PostgreSQL's DDL rolls back with it)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection

from agipower.celery import app as celery_app
from apikeys.services import key_create
from proxy import retention, tasks
from proxy.models import RequestBody, RequestLog, UsageRollup
from proxy.retention import (
    requestlog_partitions,
    requestlog_partitions_ensure,
    requestlog_retain,
    retention_cutoff,
)
from proxy.rollups import usage_fold
from tests.support.platform import database_url
from tests.support.usage import usage_commit, usage_item


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def month_end(partition: str) -> datetime:
    year, month = int(partition[-7:-3]), int(partition[-2:])
    return datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


def partition_of(log_id: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM proxy_requestlog WHERE id = %s",
            [log_id],
        )
        return cursor.fetchone()[0]


@pytest.fixture
def key(alice):
    # Each settlement commits on its own in production; here all share the
    # test's transaction, whose deferred foreign key checks would wait for its
    # end, and a partition with checks pending cannot be dropped.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    return key_create(account=alice.account, name="retention")


def log_at(alice, key, moment: datetime, **usage) -> str:
    item = usage_item(key, at=moment, prompt_tokens=10, completion_tokens=5, **usage)
    usage_commit(alice.account.pk, [item])
    return item["id"]


def test_a_log_of_a_month_without_partition_waits_in_the_default_then_moves(alice, key):
    february = log_at(alice, key, at("2024-02-10 08:00"))
    july = log_at(alice, key, at("2024-07-05 12:00"))
    assert partition_of(february) == "proxy_requestlog_default"
    assert partition_of(july) == "proxy_requestlog_default"

    made = requestlog_partitions_ensure(now=at("2024-01-20 09:00"))
    # This month and the next two, and the month of a log that waited.
    assert made == [
        "proxy_requestlog_2024_01",
        "proxy_requestlog_2024_02",
        "proxy_requestlog_2024_03",
        "proxy_requestlog_2024_07",
    ]
    assert partition_of(february) == "proxy_requestlog_2024_02"
    assert partition_of(july) == "proxy_requestlog_2024_07"
    assert RequestLog.objects.filter(pk__in=[february, july]).count() == 2
    # A new log of a month that exists goes straight there; again, nothing made.
    march = log_at(alice, key, at("2024-03-31 23:59:59.999"))
    assert partition_of(march) == "proxy_requestlog_2024_03"
    assert requestlog_partitions_ensure(now=at("2024-01-20 09:00")) == []


def test_the_months_ahead_exist_after_migrate(db):
    # The test database was migrated just now: post_migrate made them.
    now = datetime.now(UTC)
    names = set(requestlog_partitions())
    for ahead in range(3):
        month = (now.year * 12 + now.month - 1 + ahead) % 12 + 1
        year = (now.year * 12 + now.month - 1 + ahead) // 12
        assert f"proxy_requestlog_{year}_{month:02d}" in names
    assert "proxy_requestlog_default" in names


def test_the_cutoff_is_the_start_of_the_hour_the_retention_days_ago(settings):
    assert settings.REQUEST_LOG_RETENTION_DAYS == 90  # the default
    assert retention_cutoff(now=at("2024-05-31 10:20:30")) == at("2024-03-02 10:00")
    settings.REQUEST_LOG_RETENTION_DAYS = 2
    assert retention_cutoff(now=at("2024-05-31 10:20:30")) == at("2024-05-29 10:00")
    with pytest.raises(ValueError, match="at least 1 day"):
        retention_cutoff(days=0)


def test_a_retention_below_one_day_is_refused_at_start():
    env = {"REQUEST_LOG_RETENTION_DAYS": "0"}
    result = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "-c", "import agipower.settings"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert (
        "REQUEST_LOG_RETENTION_DAYS must be a whole number of days, at least 1; it is 0"
        in (result.stderr)
    )


def test_retention_drops_whole_months_and_deletes_only_what_is_due(alice, key):
    requestlog_partitions_ensure(now=at("2024-01-15 00:00"))  # 2024_01 .. 2024_03
    now = at("2024-03-31 10:20:30")
    days = 15
    cutoff = at("2024-03-16 10:00")  # the hour 15 days before now
    assert retention_cutoff(now=now, days=days) == cutoff

    logs = {
        "january": log_at(alice, key, at("2024-01-10 12:00")),
        "end of february": log_at(alice, key, at("2024-02-29 23:59:59.999")),
        "1 s before the cutoff": log_at(alice, key, cutoff - timedelta(seconds=1)),
        "at the cutoff": log_at(alice, key, cutoff),
        "1 s inside the window": log_at(
            alice, key, now - timedelta(days=days) + timedelta(seconds=1)
        ),
        # No partition for these months: the default one holds them.
        "old, in the default": log_at(alice, key, at("2023-05-01 00:00")),
        "new, in the default": log_at(alice, key, at("2024-09-01 00:00")),
    }
    assert partition_of(logs["old, in the default"]) == "proxy_requestlog_default"
    usage_fold()
    rollups = UsageRollup.objects.count()
    assert rollups == 6  # the cutoff's hour has two logs
    before = requestlog_partitions()

    retained = requestlog_retain(now=now, days=days, batch=1)

    assert retained.before == cutoff
    # Every month that ended by the cutoff (another test's may be among them).
    assert retained.dropped == [
        name
        for name in before
        if re.fullmatch(r"proxy_requestlog_\d{4}_\d{2}", name)
        and month_end(name) <= cutoff
    ]
    assert {"proxy_requestlog_2024_01", "proxy_requestlog_2024_02"} <= set(
        retained.dropped
    )
    assert retained.deleted == 2  # one by one: 1 s before the cutoff, old default
    kept = set(RequestLog.objects.values_list("id", flat=True))
    assert {str(log_id) for log_id in kept} == {
        logs["at the cutoff"],
        logs["1 s inside the window"],
        logs["new, in the default"],
    }
    partitions = requestlog_partitions()
    assert "proxy_requestlog_2024_01" not in partitions
    assert "proxy_requestlog_2024_03" in partitions
    assert "proxy_requestlog_default" in partitions
    # Analytics keep every hour.
    assert UsageRollup.objects.count() == rollups

    again = requestlog_retain(now=now, days=days, batch=1)
    assert (again.dropped, again.deleted, again.bodies_deleted) == ([], 0, 0)
    assert set(RequestLog.objects.values_list("id", flat=True)) == kept
    assert UsageRollup.objects.count() == rollups


def test_a_kept_body_goes_with_its_log(alice, key):
    from proxy.body_retention import body_retention_set
    from tests.support.bodies import bodies_keep

    body_retention_set(account=alice.account, store_bodies=True, retention_days=30)
    old = usage_item(key, at=at("2024-03-16 09:59:59"))
    new = usage_item(key, at=at("2024-03-16 10:00:00"))
    usage_commit(alice.account.pk, [old, new])
    assert bodies_keep(alice.account.pk, old) and bodies_keep(alice.account.pk, new)
    assert RequestBody.objects.count() == 2

    retained = requestlog_retain(now=at("2024-03-31 10:20:30"), days=15)
    assert retained.bodies_deleted == 1
    assert [str(b.request_id) for b in RequestBody.objects.all()] == [new["id"]]


def test_the_beat_runs_each_task_of_request_logs(settings):
    schedule = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    for name in (
        "proxy.tasks.requestlog_partitions_ensure",
        "proxy.tasks.requestlog_retain",
        "proxy.tasks.rollups_reconcile",
        "proxy.tasks.request_bodies_expire",
    ):
        assert name in schedule
        assert name in celery_app.tasks


def test_the_daily_tasks_run(alice, key):
    log_at(alice, key, datetime.now(UTC) - timedelta(days=91))
    moment = datetime.now(UTC) - timedelta(days=89)
    fresh = log_at(alice, key, moment)
    # Its month is past: the log waited in the default partition.
    assert tasks.requestlog_partitions_ensure.delay().get() == [
        f"proxy_requestlog_{moment:%Y_%m}"
    ]
    result = tasks.requestlog_retain.delay().get()
    assert result["deleted"] == 1
    assert [str(i) for i in RequestLog.objects.values_list("id", flat=True)] == [fresh]


@pytest.mark.django_db(transaction=True)
def test_a_drop_behind_a_long_read_never_holds_settles_up_and_gives_up_quietly(
    alice, key, monkeypatch, caplog
):
    monkeypatch.setattr(retention, "LOCK_ATTEMPTS", 4)
    monkeypatch.setattr(retention, "LOCK_PAUSE_SECONDS", 0.2)
    requestlog_partitions_ensure(now=at("2024-01-15 00:00"))
    log_at(alice, key, at("2024-01-10 12:00"))
    url = database_url(connection.settings_dict)
    outcome = {}

    def retain():
        try:
            outcome["retained"] = requestlog_retain(now=at("2024-06-01 00:00"), days=1)
        finally:
            connection.close()

    with psycopg.connect(url) as reader:
        # A long read of the logs (an export), still open.
        reader.execute("SELECT count(*) FROM proxy_requestlog").fetchone()
        retaining = threading.Thread(target=retain)
        retaining.start()
        # Meanwhile settles go on, each held up at most one short lock wait.
        waits = []
        while retaining.is_alive():
            started = time.monotonic()
            log_at(alice, key, datetime.now(UTC))
            waits.append(time.monotonic() - started)
        retaining.join()
        reader.rollback()
    assert len(waits) >= 3
    assert max(waits) < retention.LOCK_TIMEOUT_SECONDS + 0.35, waits
    # It gave up for this run, with a warning, not an error.
    retained = outcome["retained"]
    assert (retained.complete, retained.dropped, retained.deleted) == (False, [], 0)
    assert "retention stops here, the next run goes on" in caplog.text

    # The next run goes on.
    retained = requestlog_retain(now=at("2024-06-01 00:00"), days=1)
    assert retained.complete
    assert {
        "proxy_requestlog_2024_01",
        "proxy_requestlog_2024_02",
        "proxy_requestlog_2024_03",
    } <= set(retained.dropped)
    assert RequestLog.objects.count() == len(waits)
