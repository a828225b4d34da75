"""The settlement batches append what they add to the hourly rollups
(``UsageDelta``); the fold adds the deltas to the rollups and deletes them in
one statement. Folding while batches settle loses and doubles nothing, and one
fold runs at a time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection

from apikeys.services import key_create
from proxy import tasks
from proxy.models import RequestLog, UsageDelta, UsageRollup, UsageRollupDay
from proxy.reconciliation import rollups_check
from proxy.rollups import usage_fold
from tests.support.threads import run_concurrently
from tests.support.usage import usage_commit, usage_item
from tests.support.world import grant

SUMS = ("requests", "errors", "prompt_tokens", "completion_tokens", "cost_nanos")


def sums_of(rows) -> dict:
    totals: dict = {}
    for row in rows:
        key = (row.hour, row.api_key_id, row.model)
        values = [getattr(row, name) for name in SUMS]
        totals[key] = [
            a + b for a, b in zip(totals.get(key, [0] * 5), values, strict=True)
        ]
    return totals


def logs_by_hour(account_id: int) -> dict:
    totals: dict = {}
    for log in RequestLog.objects.filter(account_id=account_id):
        hour = log.created_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        key = (hour, log.api_key_id, log.model)
        values = [
            1,
            int(log.status >= 400),
            log.prompt_tokens,
            log.completion_tokens,
            log.cost_nanos,
        ]
        totals[key] = [
            a + b for a, b in zip(totals.get(key, [0] * 5), values, strict=True)
        ]
    return totals


def test_a_batch_appends_a_delta_per_hour_key_and_model_and_the_fold_moves_it(alice):
    key = key_create(account=alice.account, name="deltas")
    now = datetime.now(UTC).replace(minute=30)
    usage_commit(
        alice.account.pk,
        [
            usage_item(key, at=now, prompt_tokens=10),
            usage_item(key, at=now, prompt_tokens=20, status=502),
            usage_item(key, at=now - timedelta(hours=1), prompt_tokens=5),
        ],
    )
    assert UsageDelta.objects.count() == 2
    assert not UsageRollup.objects.exists()
    assert rollups_check() == ([], 1)  # the deltas count as the rollups

    assert tasks.usage_fold.delay().get() == 2
    assert not UsageDelta.objects.exists()
    hour = now.replace(minute=0, second=0, microsecond=0)
    assert {
        (r.hour, r.requests, r.errors, r.prompt_tokens)
        for r in UsageRollup.objects.all()
    } == {(hour, 2, 1, 30), (hour - timedelta(hours=1), 1, 0, 5)}
    # The daily rollups follow the hourly ones as the fold writes them.
    days = UsageRollupDay.objects.filter(account=alice.account)
    assert sum(d.requests for d in days) == 3
    assert rollups_check() == ([], 1)
    assert usage_fold() == 0  # nothing left


@pytest.mark.django_db(transaction=True)
def test_folding_while_batches_settle_loses_and_doubles_nothing(alice):
    grant(alice, "100")
    keys = [key_create(account=alice.account, name=f"k{i}") for i in range(2)]
    now = datetime.now(UTC)
    stop = threading.Event()

    def settle(n: int):
        def job():
            usage_commit(
                alice.account.pk,
                [
                    usage_item(
                        keys[(n + i) % 2],
                        at=now - timedelta(hours=i % 3),
                        prompt_tokens=n + i,
                        completion_tokens=1,
                    )
                    for i in range(3)
                ],
            )

        return job

    folded = []

    def fold_until_stopped():
        connection.ensure_connection()
        try:
            while not stop.is_set():
                folded.append(usage_fold(batch=2))
        finally:
            connection.close()

    folder = threading.Thread(target=fold_until_stopped)
    folder.start()
    try:
        results = run_concurrently([settle(n) for n in range(40)], workers=6)
    finally:
        stop.set()
        folder.join(timeout=60)
    assert all(result is None for result in results), results
    assert sum(folded) > 0  # it folded while they settled
    usage_fold()
    assert not UsageDelta.objects.exists()
    assert RequestLog.objects.count() == 120
    assert sums_of(UsageRollup.objects.all()) == logs_by_hour(alice.account.pk)
    assert rollups_check() == ([], 1)


@pytest.mark.django_db(transaction=True)
def test_one_fold_at_a_time(alice):
    key = key_create(account=alice.account, name="one")
    usage_commit(
        alice.account.pk, [usage_item(key, at=datetime.now(UTC), prompt_tokens=1)]
    )
    settings = connection.settings_dict
    dsn = (
        f"host={settings['HOST']} port={settings['PORT']} "
        f"dbname={settings['NAME']} user={settings['USER']}"
    )
    with psycopg.connect(dsn) as first:
        # A fold in an open transaction holds the turn until it ends.
        assert first.execute("SELECT proxy_usage_fold(0)").fetchone() == (0,)
        assert usage_fold() == 0  # its turn is taken: it folds nothing
        assert UsageDelta.objects.count() == 1
        first.rollback()
    assert usage_fold() == 1
