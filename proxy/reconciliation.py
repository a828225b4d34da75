"""The nightly check that the hourly usage rollups equal the request logs they
count, and the daily rollups the hourly ones.

``proxy_batch`` writes a batch's logs and what they add to their rollups in
one statement (a delta, folded into the rollup later in the same statement
that deletes it; the rollups compared here include the deltas not folded yet),
so they cannot differ unless something went around it (a hand
edit, a bug in a later version of that statement, a restore of one table but
not the other). Analytics read only the rollups; this is what says they can be
trusted.

For every account × key × model × provider × hour (UTC) whose logs are all
still kept, the logs grouped by it must equal its rollup row: requests, errors,
the token sums, the cost and the cost by kind; a group with logs and no rollup,
or a rollup with no logs, is a drift too. The hours checked start at the later
of the retention cutoff (proxy/retention.py deletes whole hours before it) and
the hour of the oldest log kept (after REQUEST_LOG_RETENTION_DAYS was raised,
the hours before it lost their logs to the shorter setting).

The daily rollups (``UsageRollupDay``), which long ranges read instead of the
hours, are checked against the hourly ones in the same statement: every
account × key × model × provider × day (UTC), all of them (the hourly rollups
are never deleted), must be the sum of that day's hourly rows, row for row (a
trigger on the hourly rollups keeps them so in the same transaction; a day
with no hourly row has no row either).

The result is recorded where the ledger's reconciliation records its runs
(``billing.ledger.models.ReconciliationRun``, in admin), as a run of its own
whose drifts are named ``rollups_match_logs`` and ``days_match_hours``: the
proxy is above billing, so it may write billing's run; billing knows nothing
of the proxy's tables.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import UTC, datetime

from django.db import connection
from django.utils import timezone

from billing.ledger.models import ReconciliationRun
from billing.ledger.reconciliation import Drift
from proxy.retention import retention_cutoff

logger = logging.getLogger(__name__)

CHECK = "rollups_match_logs"
CHECK_DAYS = "days_match_hours"
# What each side counts, in this order.
MEASURES = (
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
# The most drifts kept on a run (all are counted).
DRIFTS_KEPT = 1_000

COMPARE = """
WITH logs AS MATERIALIZED (
    SELECT account_id,
           date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
               AS hour,
           api_key_id, model, provider,
           ARRAY[count(*), count(*) FILTER (WHERE status >= 400),
                 sum(prompt_tokens), sum(cached_tokens), sum(cache_write_tokens),
                 sum(completion_tokens), sum(reasoning_tokens), sum(cost_nanos),
                 sum(input_cost_nanos), sum(cached_cost_nanos),
                 sum(cache_write_cost_nanos), sum(output_cost_nanos)]::numeric[]
               AS sums
      FROM proxy_requestlog
     WHERE created_at >= %(cutoff)s
     GROUP BY 1, 2, 3, 4, 5
), horizon AS (
    -- Logs older than the cutoff still there: every hour from it on is whole.
    -- Otherwise the hours start at the oldest log kept (none kept: none).
    SELECT CASE WHEN EXISTS (SELECT 1 FROM proxy_requestlog
                              WHERE created_at < %(cutoff)s)
                THEN %(cutoff)s::timestamptz
                ELSE coalesce((SELECT min(hour) FROM logs), 'infinity')
           END AS since
), rolled AS (
    SELECT account_id, hour, api_key_id, model, provider,
           ARRAY[requests, errors, prompt_tokens, cached_tokens,
                 cache_write_tokens, completion_tokens, reasoning_tokens,
                 cost_nanos, input_cost_nanos, cached_cost_nanos,
                 cache_write_cost_nanos, output_cost_nanos]::numeric[] AS sums
      FROM proxy_usagerollup
     WHERE hour >= %(cutoff)s
), unfolded AS (
    SELECT account_id, hour, api_key_id, model, provider,
           ARRAY[sum(requests), sum(errors), sum(prompt_tokens), sum(cached_tokens),
                 sum(cache_write_tokens), sum(completion_tokens),
                 sum(reasoning_tokens), sum(cost_nanos), sum(input_cost_nanos),
                 sum(cached_cost_nanos), sum(cache_write_cost_nanos),
                 sum(output_cost_nanos)]::numeric[] AS sums
      FROM proxy_usagedelta
     WHERE hour >= %(cutoff)s
     GROUP BY 1, 2, 3, 4, 5
), rollups AS (
    -- A rollup row and the deltas not folded into it yet, added up.
    SELECT account_id, hour, api_key_id, model, provider,
           CASE WHEN r.sums IS NULL THEN u.sums
                WHEN u.sums IS NULL THEN r.sums
                ELSE ARRAY(SELECT a + b FROM unnest(r.sums, u.sums) AS x(a, b))
           END AS sums
      FROM rolled r FULL JOIN unfolded u
           USING (account_id, hour, api_key_id, model, provider)
), compared AS MATERIALIZED (
    SELECT account_id, hour, api_key_id, model, provider,
           l.sums AS logged, r.sums AS rolled
      FROM logs l FULL JOIN rollups r
           USING (account_id, hour, api_key_id, model, provider)
     WHERE hour >= (SELECT since FROM horizon)
), hours_by_day AS (
    SELECT account_id, (hour AT TIME ZONE 'UTC')::date AS day, api_key_id, model,
           provider,
           ARRAY[sum(requests), sum(errors), sum(prompt_tokens), sum(cached_tokens),
                 sum(cache_write_tokens), sum(completion_tokens),
                 sum(reasoning_tokens), sum(cost_nanos), sum(input_cost_nanos),
                 sum(cached_cost_nanos), sum(cache_write_cost_nanos),
                 sum(output_cost_nanos)]::numeric[] AS sums
      FROM proxy_usagerollup
     GROUP BY 1, 2, 3, 4, 5
), days AS (
    SELECT account_id, day, api_key_id, model, provider,
           ARRAY[requests, errors, prompt_tokens, cached_tokens,
                 cache_write_tokens, completion_tokens, reasoning_tokens,
                 cost_nanos, input_cost_nanos, cached_cost_nanos,
                 cache_write_cost_nanos, output_cost_nanos]::numeric[] AS sums
      FROM proxy_usagerollupday
), days_compared AS MATERIALIZED (
    SELECT account_id, day, api_key_id, model, provider,
           h.sums AS hourly, d.sums AS daily
      FROM hours_by_day h FULL JOIN days d
           USING (account_id, day, api_key_id, model, provider)
)
SELECT %(hours)s AS kind, account_id, hour, api_key_id, model, provider,
       logged, rolled, NULL::bigint AS accounts, NULL::timestamptz AS since
  FROM compared
 WHERE logged IS DISTINCT FROM rolled
UNION ALL
SELECT %(days)s, account_id, day::timestamp AT TIME ZONE 'UTC', api_key_id, model,
       provider, hourly, daily, NULL, NULL
  FROM days_compared
 WHERE hourly IS DISTINCT FROM daily
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       (SELECT count(*) FROM (SELECT account_id FROM compared
                              UNION SELECT account_id FROM days_compared) checked),
       (SELECT nullif(since, 'infinity') FROM horizon)
"""


def _requests(count) -> str:
    return f"{int(count)} request{'' if count == 1 else 's'}"


def _detail(check, moment, key_id, model, provider, logged, rolled) -> str:
    """What differs: ``logged`` is what the logs (or the hours of a day) sum
    to, ``rolled`` the rollup's (or the day's) row."""
    if check == CHECK:
        what, rollup = "logs", "rollup"
        where = f"hour {moment:%Y-%m-%d %H}:00 UTC"
    else:
        what, rollup = "hours", "day"
        where = f"day {moment.astimezone(UTC):%Y-%m-%d} UTC"
    where = f"key {key_id}, {model} via {provider}, {where}"
    if rolled is None:
        return f"{where}: {what} of {_requests(logged[0])}, no {rollup}"
    if logged is None:
        return f"{where}: a {rollup} of {_requests(rolled[0])}, no {what}"
    differ = ", ".join(
        f"{name} {what} {int(a)} {rollup} {int(b)}"
        for name, a, b in zip(MEASURES, logged, rolled, strict=True)
        if a != b
    )
    return f"{where}: {differ}"


def rollups_check(*, now: datetime | None = None) -> tuple[list[Drift], int]:
    """Compare the hourly rollups with the logs of every hour whose logs are
    all kept, and the daily rollups with the hourly ones, in one statement
    (one snapshot: a settlement commits all three or none). Answers the
    drifts and how many accounts were checked."""
    cutoff = retention_cutoff(now=now)
    drifts = []
    with connection.cursor() as cursor:
        cursor.execute(COMPARE, {"cutoff": cutoff, "hours": CHECK, "days": CHECK_DAYS})
        *rows, (*_, accounts, since) = cursor.fetchall()
    for check, account_id, moment, key_id, model, provider, logged, rolled, *_ in rows:
        drifts.append(
            Drift(
                check,
                account_id,
                _detail(check, moment, key_id, model, provider, logged, rolled),
            )
        )
    logger.info(
        "usage rollups checked from %s: %d accounts, %d drifts",
        since.isoformat() if since else "(no log kept: nothing)",
        accounts,
        len(drifts),
    )
    return drifts, accounts


def rollups_reconcile(*, now: datetime | None = None) -> ReconciliationRun:
    """Check the rollups and record the result as a reconciliation run."""
    run = ReconciliationRun.objects.create()
    drifts, accounts = rollups_check(now=now)
    run.accounts_checked = accounts
    run.drift_count = len(drifts)
    run.drifts = [asdict(drift) for drift in drifts[:DRIFTS_KEPT]]
    run.finished_at = timezone.now()
    run.save()
    for drift in drifts[:DRIFTS_KEPT]:
        logger.error("rollup drift on account %s: %s", drift.account_id, drift.detail)
    return run
