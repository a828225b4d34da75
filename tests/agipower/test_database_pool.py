"""Django's connections in the web server's processes are lent from a pool
(DB_POOL_MAX_SIZE, agipower/asgi.py): requests reuse a few warm connections
instead of each opening its own, and every request gives its connection back,
a download cut short too. Celery's worker never pools: its prefork processes
open a plain connection per task, which Celery closes after it, so none is
kept and none is shared across a fork."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from celery import Celery
from django.db import connection
from kombu import Connection

from apikeys.models import KeyKind
from billing.models import ReconciliationRun
from tests.support.keys import make_key
from tests.support.platform import PlatformProcess, database_url

pytestmark = pytest.mark.django_db(transaction=True)

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKER = "agipower-worker-test"


def sessions() -> int:
    """Sessions ever opened to the test database (PostgreSQL counts them)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        )
        return cursor.fetchone()[0]


def backends(application_name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            [application_name],
        )
        return cursor.fetchone()[0]


def test_requests_reuse_the_pools_connections_and_give_them_back(alice):
    key = make_key(alice)
    # Logs enough that a download cut short is cut while it streams (~6 MB).
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO proxy_requestlog (
                id, account_id, api_key_id, model, provider, endpoint, status,
                error, streamed, prompt_tokens, cached_tokens, cache_write_tokens,
                completion_tokens, reasoning_tokens, usage_estimated, cost_nanos,
                cost_topup_nanos, cost_bonus_nanos, latency_ms, created_at)
            SELECT gen_random_uuid(), %s, %s, 'openai/gpt-5', 'openai', 'chat',
                   200, repeat('x', 250), false, 0, 0, 0, 0, 0, false, 0, 0, 0, 0,
                   %s::timestamptz + n * interval '1 second'
              FROM generate_series(1, 20000) n
            """,
            [alice.account.pk, key.api_key.pk, datetime(2026, 3, 1, tzinfo=UTC)],
        )
    secret = make_key(alice, kind=KeyKind.MANAGEMENT).secret
    # Two connections: a request that kept its own would starve the third.
    platform = PlatformProcess(
        database_url=database_url(connection.settings_dict),
        env={"DB_POOL_MAX_SIZE": "2"},
    )
    with (
        platform,
        httpx.Client(
            base_url=platform.url,
            headers={"Authorization": f"Bearer {secret}"},
            timeout=10,  # a request waiting for a connection never lent back
        ) as client,
    ):
        assert client.get("/api/v1/balance").status_code == 200  # the pool opens
        before = sessions()
        for _ in range(30):
            assert client.get("/api/v1/balance").status_code == 200
        # Without a pool each request opens (and closes) a connection of its own.
        assert sessions() - before <= 4

        # Downloads give theirs back, whole or cut short by the client.
        for _ in range(3):
            with client.stream("GET", "/api/v1/requests.csv") as response:
                assert response.status_code == 200
                next(response.iter_bytes())
        response = client.get("/api/v1/requests.csv")
        assert response.content.count(b"\n") == 20_001
        for _ in range(3):
            assert len(client.get("/api/v1/requests?limit=1").json()["results"]) == 1


def test_a_prefork_worker_opens_a_connection_per_task_and_keeps_none(tmp_path):
    queue = tmp_path / "celery" / "queue"
    queue.mkdir(parents=True)
    env = {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict),
        "DB_POOL_MAX_SIZE": "10",  # the web server's: the worker has no pool
        "AGIPOWER_VAR_DIR": str(tmp_path),
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "PGAPPNAME": WORKER,
    }
    before = sessions()
    worker = subprocess.Popen(  # noqa: S603 - fixed argv
        [
            sys.executable,
            *("-m", "celery", "-A", "agipower", "worker", "--pool", "prefork"),
            *("--concurrency", "1", "--loglevel", "INFO"),
            *("--without-gossip", "--without-mingle", "--without-heartbeat"),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def until(condition, *, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            if worker.poll() is not None or time.monotonic() > deadline:
                worker.kill()
                output = worker.communicate()[0]
                pytest.fail(f"the worker did not get there:\n{output[-4000:]}")
            time.sleep(0.1)

    # The web server's side of the worker's broker (files under its var/), on
    # a connection of its own: none is taken from or left in kombu's pools,
    # which are global to the process (the tests' eager app uses them).
    sender = Celery("sender", set_as_current=False)
    broker = Connection(
        "filesystem://",
        transport_options={
            "data_folder_in": str(queue),
            "data_folder_out": str(queue),
            "control_folder": str(queue.parent / "control"),
        },
    )
    tasks = 3
    try:
        with broker:
            for _ in range(tasks):
                sender.send_task("proxy.tasks.rollups_reconcile", connection=broker)
        # Each task wrote its run: the forked processes read and write.
        done = ReconciliationRun.objects.filter(finished_at__isnull=False)
        until(lambda: done.count() == tasks, seconds=60)
        # Closed after each task: nothing kept, nothing left to a fork.
        until(lambda: backends(WORKER) == 0, seconds=10)
        # One session a task, and one for the checks the worker runs as it
        # starts (a pool would keep its minimum open from there on).
        assert tasks <= sessions() - before <= tasks + 1
    finally:
        worker.terminate()
        try:
            worker.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.communicate()
