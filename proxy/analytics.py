"""Cost analytics: what an account spent over a UTC range, by hour, day or
month, grouped by model, key, provider or kind of token.

Read from the usage rollups, never from the request logs. An hourly rollup row
(``UsageRollup``) counts an account × hour × key × model × provider; what a
settlement batch adds to it is appended in the same statement as the logs it
counts (``proxy_batch``, a ``UsageDelta``) and folded into it moments later,
and a reader adds the deltas not folded yet, so the sums are the logs' sums to
the nano and never lag. A daily row (``UsageRollupDay``) is the sum of that
day's hourly rows (UTC), kept by a trigger on them in the same transaction. So
a range's bounds fall on whole hours (UTC), and a range reads its whole days
from the daily rollups and only the hours of the days it enters or leaves
midway from the hourly ones (and the few unfolded deltas): 30 days of an
account are 30 rows per key × model, not 720.

One statement over the rollups' unique indexes (account, day or hour, ...), so
one snapshot: the range grouped by bucket × group (the series; by hour it reads
the hourly rollups alone), by model (the table of models, whose sum is the
totals), and the totals of the period of equal length just before (the change
the cards show).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction

from accounts.models import Account
from apikeys.models import ApiKey

GRANULARITIES = ("hour", "day", "month")
GROUPINGS = ("model", "key", "provider", "type")
# The kinds of token a charge is split into, as group_by=type names them.
KINDS = {
    "input": "Input",
    "cached": "Cached input",
    "cache_write": "Cache write",
    "output": "Output",
}
TOKENS_PER_MILLION = 1_000_000

# The sums every query reads, in this order.
_SUMS = """
    sum(requests), sum(prompt_tokens), sum(cached_tokens), sum(cache_write_tokens),
    sum(completion_tokens), sum(cost_nanos), sum(input_cost_nanos),
    sum(cached_cost_nanos), sum(cache_write_cost_nanos), sum(output_cost_nanos)
"""
# The columns each source row carries into the sums above.
_COLUMNS = """
    model, requests, prompt_tokens, cached_tokens, cache_write_tokens,
    completion_tokens, cost_nanos, input_cost_nanos, cached_cost_nanos,
    cache_write_cost_nanos, output_cost_nanos
"""
# Buckets as UTC times without a zone: grouped by, then made aware in Python.
# (Converting every row back to timestamptz costs more than the grouping.) A
# daily rollup's day is a bucket by day or month, never by hour.
_BUCKETS = {
    "hour": "hour AT TIME ZONE 'UTC'",
    "day": "date_trunc('day', hour AT TIME ZONE 'UTC')",
    "month": "date_trunc('month', hour AT TIME ZONE 'UTC')",
}
_DAY_BUCKETS = {
    "day": "day::timestamp",
    "month": "date_trunc('month', day::timestamp)",
}
_GROUPS = {
    "model": "model",
    "provider": "provider",
    "key": "api_key_id::text",
    "type": "NULL::text",
}


def half_even_div(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded to a whole number, half to even."""
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2):
        quotient += 1
    return quotient


@dataclass(frozen=True)
class Usage:
    """Sums of rollup rows. Costs in nano-USD; ``prompt_tokens`` includes the
    cached and cache-write ones, ``completion_tokens`` the reasoning ones."""

    requests: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    completion_tokens: int = 0
    cost: int = 0
    input_cost: int = 0  # uncached prompt tokens
    cached_cost: int = 0
    cache_write_cost: int = 0
    output_cost: int = 0

    @classmethod
    def of(cls, row) -> Usage:
        return cls(*(int(value or 0) for value in row))

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            *(
                getattr(self, name) + getattr(other, name)
                for name in self.__dataclass_fields__
            )
        )

    @property
    def other_cost(self) -> int:
        """Cached input and cache writes."""
        return self.cached_cost + self.cache_write_cost

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def uncached_tokens(self) -> int:
        # Never below 0, where upstream reported more cached tokens than prompt
        # tokens (as a request's detail shows it).
        return max(self.prompt_tokens - self.cached_tokens - self.cache_write_tokens, 0)

    @property
    def avg_cost_per_request(self) -> int | None:
        if not self.requests:
            return None
        return half_even_div(self.cost, self.requests)

    @property
    def avg_cost_per_million_tokens(self) -> int | None:
        if not self.tokens:
            return None
        return half_even_div(self.cost * TOKENS_PER_MILLION, self.tokens)


@dataclass(frozen=True)
class Point:
    """One bucket × group of the series."""

    t: datetime
    group: str
    label: str
    cost: int
    requests: int
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class ModelRow:
    model: str
    usage: Usage


@dataclass(frozen=True)
class CostReport:
    since: datetime
    until: datetime  # exclusive
    granularity: str
    group_by: str
    totals: Usage
    previous_since: datetime
    previous: Usage  # [previous_since, since): as long as the range
    buckets: list[datetime]  # every bucket's start, with usage or not
    series: list[Point]
    models: list[ModelRow]


def bucket_start(moment: datetime, granularity: str) -> datetime:
    """The start of the bucket holding ``moment`` (UTC)."""
    moment = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if granularity == "hour":
        return moment
    moment = moment.replace(hour=0)
    return moment if granularity == "day" else moment.replace(day=1)


def buckets_between(since: datetime, until: datetime, granularity: str) -> list:
    """The starts of the buckets that overlap ``[since, until)``; the first may
    start before ``since`` (a day or month that the range enters midway)."""
    starts = []
    start = bucket_start(since, granularity)
    while start < until:
        starts.append(start)
        if granularity == "hour":
            start += timedelta(hours=1)
        elif granularity == "day":
            start += timedelta(days=1)
        else:
            start = (start + timedelta(days=32)).replace(day=1)
    return starts


def cost_report(
    *,
    account: Account,
    since: datetime,
    until: datetime,
    granularity: str = "day",
    group_by: str = "model",
    key_ids: tuple[int, ...] = (),
    model: str | None = None,
    provider: str | None = None,
) -> CostReport:
    """The account's usage in ``[since, until)`` (whole hours, UTC), and in the
    period of equal length just before; of some keys, a model, a provider. A
    key id of another account finds nothing, as in the request logs."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity {granularity!r}")
    if group_by not in GROUPINGS:
        raise ValueError(f"group_by {group_by!r}")
    filters = ["account_id = %s"]
    params: list = [account.pk]
    if key_ids:
        filters.append("api_key_id = ANY(%s)")
        params.append(list(key_ids))
    if model:
        filters.append("model = %s")
        params.append(model)
    if provider:
        filters.append("provider = %s")
        params.append(provider)
    where = (" AND ".join(filters), params)
    group = _GROUPS[group_by]
    previous_since = since - (until - since)
    # The series by hour reads hours; anything else reads whole days as days.
    series = _rows(where, since, until, bucket=granularity, group=group)
    range_ = _rows(where, since, until)
    before = _rows(where, previous_since, since)

    with transaction.atomic(), connection.cursor() as cursor:
        # Hash the groups in memory: the planner overestimates how many there
        # are, and would otherwise sort the rows on disk (3x slower). Neither
        # JIT nor parallel workers: starting them costs more than these
        # queries take.
        cursor.execute(
            "SET LOCAL work_mem = '64MB'; SET LOCAL jit = off; "
            "SET LOCAL max_parallel_workers_per_gather = 0"
        )
        cursor.execute(
            f"""
            SELECT 's', t, g, NULL, {_SUMS} FROM ({series[0]}) r GROUP BY t, g
            UNION ALL
            SELECT 'm', NULL, NULL, model, {_SUMS} FROM ({range_[0]}) r
             GROUP BY model
            UNION ALL
            SELECT 'p', NULL, NULL, NULL, {_SUMS} FROM ({before[0]}) r
            """,  # noqa: S608 - the names interpolated are the constants above
            [*series[1], *range_[1], *before[1]],
        )
        rows = cursor.fetchall()

    cells = [
        (t.replace(tzinfo=UTC), g, Usage.of(sums))
        for part, t, g, _, *sums in rows
        if part == "s"
    ]
    models = sorted(
        (
            ModelRow(model=name, usage=Usage.of(sums))
            for part, _, _, name, *sums in rows
            if part == "m"
        ),
        key=lambda row: (-row.usage.cost, row.model),
    )
    previous = next(Usage.of(sums) for part, _, _, _, *sums in rows if part == "p")
    totals = sum((row.usage for row in models), Usage())
    return CostReport(
        since=since,
        until=until,
        granularity=granularity,
        group_by=group_by,
        totals=totals,
        previous_since=previous_since,
        previous=previous,
        buckets=buckets_between(since, until, granularity),
        series=_series(cells, group_by=group_by, account=account),
        models=models,
    )


def _rows(
    where: tuple[str, list],
    since: datetime,
    until: datetime,
    *,
    bucket: str | None = None,
    group: str = "NULL",
) -> tuple[str, list]:
    """SQL of the rollup rows whose sums are the usage in ``[since, until)``
    (whole hours, UTC) that ``where`` (SQL, parameters) selects, and its
    parameters: the whole days from the daily rollups, the hours of the days
    the range enters or leaves midway from the hourly ones. The rows have the
    _COLUMNS; with a ``bucket`` (a granularity), ``t`` and ``g`` (``group``)
    too; by hour, every row is an hourly one."""
    condition, params = where
    first_day = bucket_start(since, "day")
    if first_day < since:
        first_day += timedelta(days=1)
    last_day = bucket_start(until, "day")
    hours = [(since, until)]
    days = None
    if bucket != "hour" and first_day < last_day:
        hours = [
            (lo, hi) for lo, hi in ((since, first_day), (last_day, until)) if lo < hi
        ]
        days = (first_day.date(), last_day.date())
    g = f"{group} AS g, " if bucket is not None else ""
    parts, values = [], []
    if days is not None:
        t = f"{_DAY_BUCKETS[bucket]} AS t, " if bucket is not None else ""
        parts.append(
            f"SELECT {t}{g}{_COLUMNS} FROM proxy_usagerollupday "  # noqa: S608
            f"WHERE {condition} AND day >= %s AND day < %s"
        )
        values += [*params, *days]
    t = f"{_BUCKETS[bucket]} AS t, " if bucket is not None else ""
    for lo, hi in hours:
        parts.append(
            f"SELECT {t}{g}{_COLUMNS} FROM proxy_usagerollup "  # noqa: S608
            f"WHERE {condition} AND hour >= %s AND hour < %s"
        )
        values += [*params, lo, hi]
    # What batches added that is not folded into the rollups yet (any hour).
    parts.append(
        f"SELECT {t}{g}{_COLUMNS} FROM proxy_usagedelta "  # noqa: S608
        f"WHERE {condition} AND hour >= %s AND hour < %s"
    )
    values += [*params, since, until]
    return " UNION ALL ".join(parts), values


def _series(cells: list, *, group_by: str, account: Account) -> list[Point]:
    """The points of the chart, by bucket, then group."""
    if group_by == "type":
        return [
            point
            for t, _, usage in sorted(cells, key=lambda cell: cell[0])
            for point in _by_kind(t, usage)
        ]
    if group_by == "key":
        names = dict(
            ApiKey.objects.filter(
                account=account, pk__in={int(g) for _, g, _ in cells}
            ).values_list("pk", "name")
        )

        def label(group: str) -> str:
            return names.get(int(group), "")

        def order(cell) -> tuple:
            return (cell[0], int(cell[1]))
    else:

        def label(group: str) -> str:
            return group

        def order(cell) -> tuple:
            return (cell[0], cell[1])

    return [
        Point(
            t=t,
            group=group,
            label=label(group),
            cost=usage.cost,
            requests=usage.requests,
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
        )
        for t, group, usage in sorted(cells, key=order)
    ]


def _by_kind(t: datetime, usage: Usage) -> list[Point]:
    """A bucket's usage as one point per kind of token: each kind's cost and
    prompt tokens (the uncached ones for "input"); the completion tokens on
    the "output" point. Each point carries the bucket's requests."""
    parts = {
        "input": (usage.input_cost, usage.uncached_tokens, 0),
        "cached": (usage.cached_cost, usage.cached_tokens, 0),
        "cache_write": (usage.cache_write_cost, usage.cache_write_tokens, 0),
        "output": (usage.output_cost, 0, usage.completion_tokens),
    }
    return [
        Point(
            t=t,
            group=kind,
            label=KINDS[kind],
            cost=cost,
            requests=usage.requests,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
        )
        for kind, (cost, input_tokens, output_tokens) in parts.items()
    ]
