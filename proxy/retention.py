"""Request logs over time: the month partitions made before the logs that need
them arrive, and retention (``REQUEST_LOG_RETENTION_DAYS``) that deletes the
logs past it, whole month partitions at a time where it can.

The work is done by the SQL (proxy/sql/proxy_v1.sql: ``proxy_requestlog_month``
and ``proxy_requestlog_retain``); here is when, how much at a time, and how
long to wait for the log table's lock. Both are daily beat tasks
(proxy/tasks.py); the months ahead are also made after every ``migrate``.

Retention deletes whole hours: the cutoff is the start of the hour
``REQUEST_LOG_RETENTION_DAYS`` ago. So every hour the logs still cover is
whole, and the nightly check that the hourly rollups equal the logs
(proxy/reconciliation.py) can compare it. The rollups themselves are kept.

Dropping a partition, and attaching one while a default partition exists, lock
what every settle writes to. A lock request that waits (behind a long read: a
CSV export, a report) makes every settle that arrives queue behind it, so each
statement waits only ``LOCK_TIMEOUT_SECONDS`` (a settle is held up that long at
most) and, refused, is tried again after a pause that lets the settles
through. A table still busy after ``LOCK_ATTEMPTS`` tries ends the run with a
warning, having done what it could: the next day's run goes on from there.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.apps import AppConfig
from django.conf import settings
from django.db import OperationalError, connections, transaction
from django.utils import timezone

from proxy.body_retention import request_bodies_delete_older

logger = logging.getLogger(__name__)

# This month and the next ones: a month is made at least this long before its
# first log (the task runs daily, so a failing run has weeks to be noticed).
MONTHS_AHEAD = 2
# Logs deleted per statement (each commits on its own).
RETAIN_BATCH = 10_000
# How long one statement waits for the log table's lock (every settle queues
# behind the wait), how many tries, and the pause before the second (doubled
# after each, up to the last): about 4 minutes in all before the run gives up.
LOCK_TIMEOUT_SECONDS = 0.15
LOCK_ATTEMPTS = 20
LOCK_PAUSE_SECONDS = 0.5
LOCK_PAUSE_MAX_SECONDS = 15.0
LOCK_NOT_AVAILABLE = "55P03"

PARTITIONS = """
    SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'proxy_requestlog'::regclass
"""


class LogTableBusy(Exception):
    """The log table's lock was refused LOCK_ATTEMPTS times: this run stops."""


@dataclass(frozen=True)
class Retained:
    """What one retention run deleted."""

    before: datetime
    dropped: list[str] = field(default_factory=list)  # whole month partitions
    deleted: int = 0  # logs deleted one by one (the straddling month, default)
    bodies_deleted: int = 0  # kept bodies of logs that are gone
    complete: bool = True  # False: the log table stayed busy, the next run goes on


def retention_cutoff(*, now: datetime | None = None, days: int | None = None):
    """The start of the hour ``days`` (REQUEST_LOG_RETENTION_DAYS) ago: the
    logs before it are due."""
    days = settings.REQUEST_LOG_RETENTION_DAYS if days is None else days
    if days < 1:
        raise ValueError(f"retention must be at least 1 day, not {days}")
    moment = (now or timezone.now()) - timedelta(days=days)
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _month_start(moment: datetime, *, ahead: int = 0) -> datetime:
    index = moment.astimezone(UTC).year * 12 + moment.astimezone(UTC).month - 1
    index += ahead
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def _locked(sql: str, params: list, *, using: str):
    """One statement in a transaction of its own that waits at most
    LOCK_TIMEOUT_SECONDS for a table's lock, tried again after a pause up to
    LOCK_ATTEMPTS times; answers its first row, or raises LogTableBusy."""
    timeout = f"{max(1, round(LOCK_TIMEOUT_SECONDS * 1000))}ms"
    for attempt in range(LOCK_ATTEMPTS):
        if attempt:
            time.sleep(
                min(LOCK_PAUSE_SECONDS * 2 ** (attempt - 1), LOCK_PAUSE_MAX_SECONDS)
            )
        try:
            with (
                transaction.atomic(using=using),
                connections[using].cursor() as cursor,
            ):
                cursor.execute("SHOW lock_timeout")
                [previous] = cursor.fetchone()
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [timeout])
                cursor.execute(sql, params)
                row = cursor.fetchone()
                # Inside a caller's transaction, SET LOCAL would outlive this.
                cursor.execute(
                    "SELECT set_config('lock_timeout', %s, true)", [previous]
                )
                return row
        except OperationalError as error:
            if getattr(error.__cause__, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
    raise LogTableBusy(
        f"the request log table stayed locked: {LOCK_ATTEMPTS} tries of {timeout}"
    )


def requestlog_partitions(*, using: str = "default") -> list[str]:
    """The log table's partitions, by name (the default one included)."""
    with connections[using].cursor() as cursor:
        cursor.execute(PARTITIONS + " ORDER BY c.relname")
        return [name for (name,) in cursor.fetchall()]


def requestlog_partitions_ensure(
    *, now: datetime | None = None, using: str = "default"
) -> list[str]:
    """Make the month partitions of this month and the next MONTHS_AHEAD, and
    of every month whose logs wait in the default partition (unless retention
    is about to delete them), moving those logs there. Answers the partitions
    made; running it again makes none."""
    now = now or timezone.now()
    months = {_month_start(now, ahead=ahead) for ahead in range(MONTHS_AHEAD + 1)}
    with connections[using].cursor() as cursor:
        # Empty while the months are made ahead of time: a quick look.
        cursor.execute(
            "SELECT DISTINCT date_trunc('month', created_at AT TIME ZONE 'UTC')"
            " FROM proxy_requestlog_default WHERE created_at >= %s",
            [retention_cutoff(now=now)],
        )
        months |= {month.replace(tzinfo=UTC) for (month,) in cursor.fetchall()}
    before = set(requestlog_partitions(using=using))
    made = []
    for month in sorted(months):
        try:
            [name] = _locked("SELECT proxy_requestlog_month(%s)", [month], using=using)
        except LogTableBusy as busy:
            # The months are made weeks ahead: the next run makes the rest.
            logger.warning("request logs: partitions not all made: %s", busy)
            break
        if name not in before:
            made.append(name)
            logger.info("request logs: made partition %s", name)
    return made


def requestlog_retain(
    *,
    now: datetime | None = None,
    days: int | None = None,
    batch: int = RETAIN_BATCH,
    using: str = "default",
) -> Retained:
    """Delete the request logs past retention: drop the month partitions that
    ended before the cutoff, then delete the older logs of the month that
    straddles it (and of the default partition) ``batch`` at a time, until
    none is left. The hourly rollups are kept. Running it again deletes
    nothing more."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, not {batch}")
    before = retention_cutoff(now=now, days=days)
    dropped: list[str] = []
    deleted = 0
    complete = True
    while True:
        try:
            gone, count = _locked(
                "SELECT dropped, deleted FROM proxy_requestlog_retain(%s, %s)",
                [before, batch],
                using=using,
            )
        except LogTableBusy as busy:
            logger.warning(
                "request logs: retention stops here, the next run goes on: %s", busy
            )
            complete = False
            break
        dropped += gone
        deleted += count
        # A call that dropped partitions deleted nothing yet (see the SQL).
        if not gone and count < batch:
            break
    bodies = request_bodies_delete_older(before=before, using=using)
    retained = Retained(
        before=before,
        dropped=dropped,
        deleted=deleted,
        bodies_deleted=bodies,
        complete=complete,
    )
    logger.info(
        "request logs before %s: dropped %s, deleted %d logs and %d bodies%s",
        before.isoformat(),
        ", ".join(dropped) or "no partition",
        deleted,
        bodies,
        "" if complete else " (stopped: the log table stayed busy)",
    )
    return retained


def partitions_after_migrate(sender: AppConfig, using: str, **kwargs) -> None:
    """post_migrate of the proxy (after billing's receiver has installed the
    proxy's SQL): the months ahead exist as soon as the database does. A
    database migrated back before the partitions is left alone."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT to_regprocedure('proxy_requestlog_month(timestamptz)')"
            " IS NOT NULL AND to_regclass('proxy_requestlog_default') IS NOT NULL"
        )
        if not cursor.fetchone()[0]:
            return
    made = requestlog_partitions_ensure(using=using)
    if made and kwargs.get("verbosity", 1) >= 1:
        stdout = kwargs.get("stdout") or sys.stdout
        stdout.write(f"  Made request log partitions {', '.join(made)}\n")
