"""Reads of the proxy's tables: request logs (an account's own only) and
price versions.

An account's request logs are read newest first by keyset ("cursor")
pagination on (created_at, id), which the index log_account_time
(account_id, created_at DESC, id DESC) serves at any depth, and counted from
the usage rollups wherever they can answer (the daily ones for whole days, the
hourly ones for whole hours), the logs counting only the parts of hours at the
ends of the range.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.db.models import BooleanField, F, QuerySet
from django.db.models.expressions import RawSQL
from rest_framework.exceptions import ValidationError

from accounts.models import Account
from proxy.filters import LogFilters
from proxy.models import ModelPrice, RequestLog

# A request id (a UUIDv7) says when its request arrived, to the millisecond;
# its log was written with that moment. Looking no further than this either
# side of it lets PostgreSQL read one or two month partitions, not all.
ID_WINDOW = timedelta(days=1)


def request_logs_matching(*, account: Account, filters: LogFilters) -> QuerySet:
    """An account's request logs that ``filters`` select, newest first. A key
    id of another account finds nothing."""
    logs = RequestLog.objects.filter(account=account)
    if filters.since is not None:
        logs = logs.filter(created_at__gte=filters.since)
    if filters.before is not None:
        logs = logs.filter(created_at__lt=filters.before)
    if filters.key_ids:
        logs = logs.filter(api_key_id__in=filters.key_ids)
    if filters.model:
        logs = logs.filter(model=filters.model)
    if filters.provider:
        logs = logs.filter(provider=filters.provider)
    if filters.status == "ok":
        logs = logs.filter(status__lt=400)
    elif filters.status == "error":
        logs = logs.filter(status__gte=400)
    if filters.finish_reason:
        logs = logs.filter(finish_reason=filters.finish_reason)
    if filters.request_id is not None:
        logs = logs.filter(id=filters.request_id)
        if (window := id_window(filters.request_id)) is not None:
            logs = logs.filter(created_at__gte=window[0], created_at__lte=window[1])
    return logs.order_by("-created_at", "-id")


def id_window(request_id: uuid.UUID) -> tuple[datetime, datetime] | None:
    """The moments the log of a UUIDv7 request id was written in (its first
    48 bits are its creation in Unix milliseconds); None for another kind."""
    if request_id.version != 7:
        return None
    try:
        made = datetime.fromtimestamp((request_id.int >> 80) / 1000, UTC)
        return made - ID_WINDOW, made + ID_WINDOW
    except (ValueError, OverflowError, OSError):
        return None


# --- pages ------------------------------------------------------------------


@dataclass(frozen=True)
class LogPage:
    """A page of request logs, newest first; each row has ``key_name``. The
    cursors are opaque: ``next`` reads older rows, ``previous`` newer ones;
    None when there is none to read."""

    rows: list[RequestLog]
    next_cursor: str | None
    previous_cursor: str | None


@dataclass(frozen=True)
class _Position:
    created_at: datetime
    id: uuid.UUID
    older: bool  # read the rows older than the position (else newer ones)


def request_logs_page(
    *,
    account: Account,
    filters: LogFilters,
    cursor: str | None = None,
    limit: int = 50,
) -> LogPage:
    """One page of the logs ``filters`` select, at ``cursor`` (the first page
    without one).

    A page starts after a row's (created_at, id), compared as a row value, so
    that the index walks straight to it: a deep page costs what the first
    does, and logs that arrive meanwhile (newer than any page read) never
    shift a row onto the next page or off it."""
    position = _cursor_read(cursor) if cursor else None
    logs = request_logs_matching(account=account, filters=filters).annotate(
        key_name=F("api_key__name")
    )
    if position is None:
        rows = list(logs[: limit + 1])
        more = len(rows) > limit
        rows = rows[:limit]
        return LogPage(
            rows=rows,
            next_cursor=_cursor_at(rows[-1], older=True) if more else None,
            previous_cursor=None,
        )
    after = [position.created_at, position.id]
    if position.older:
        # The bound on created_at alone spares PostgreSQL the newer months.
        older = logs.filter(created_at__lte=position.created_at)
        rows = list(older.filter(_row_value("<", after))[: limit + 1])
        more = len(rows) > limit
        rows = rows[:limit]
        return LogPage(
            rows=rows,
            next_cursor=_cursor_at(rows[-1], older=True) if more else None,
            # Back to the newer rows, from this page's first (or the position,
            # when this page is empty).
            previous_cursor=_cursor_at(rows[0], older=False)
            if rows
            else _cursor_encode(position.created_at, position.id, older=False),
        )
    newer = logs.filter(created_at__gte=position.created_at)
    rows = list(
        newer.filter(_row_value(">", after)).order_by("created_at", "id")[: limit + 1]
    )
    more = len(rows) > limit
    rows = rows[:limit][::-1]
    return LogPage(
        rows=rows,
        next_cursor=_cursor_at(rows[-1], older=True)
        if rows
        else _cursor_encode(position.created_at, position.id, older=True),
        previous_cursor=_cursor_at(rows[0], older=False) if more else None,
    )


def _row_value(op: str, after: list) -> RawSQL:
    # A row-value comparison, which PostgreSQL matches to the index's
    # (created_at DESC, id DESC) columns; the ORM would spell it out in ORs.
    return RawSQL(  # noqa: S611 - op is "<" or ">", the values are parameters
        f'("proxy_requestlog"."created_at", "proxy_requestlog"."id") {op} (%s, %s)',
        after,
        output_field=BooleanField(),
    )


def _cursor_at(log: RequestLog, *, older: bool) -> str:
    return _cursor_encode(log.created_at, log.id, older=older)


def _cursor_encode(created_at: datetime, log_id: uuid.UUID, *, older: bool) -> str:
    micros = _micros(created_at)
    text = f"{'o' if older else 'n'}{micros}.{log_id.hex}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _cursor_read(cursor: str) -> _Position:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
        direction, rest = text[0], text[1:]
        micros, hex_id = rest.split(".")
        if direction not in "on" or not micros.isascii() or not micros.isdigit():
            raise ValueError(direction)
        created_at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
            microseconds=int(micros)
        )
        return _Position(created_at, uuid.UUID(hex=hex_id), older=direction == "o")
    except (ValueError, IndexError, UnicodeError, OverflowError, binascii.Error):
        raise ValidationError(
            {"cursor": ["Not a cursor of this list: use the next or previous link."]}
        ) from None


def _micros(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# --- counts -----------------------------------------------------------------

# The count of a range [a, e) in five parts, whose bounds
# a <= b <= m1 <= m2 <= d <= e the statement works out itself:
#   [a, b)    the logs of the part of an hour the range starts in,
#   [b, m1)   the hourly rollups up to the first midnight (UTC),
#   [m1, m2)  the daily rollups of the whole days,
#   [m2, d)   the hourly rollups from the last midnight,
#   [d, e)    the logs of the part of an hour the range ends in.
# The deltas batches appended and the fold has not added to the hourly
# rollups yet count with [b, d) (proxy/rollups.py).
# A part with nothing to count is empty (a range within one hour: all logs).
# The range starts no earlier than the account's oldest log kept: retention
# deletes old logs and keeps their rollups. With no log kept, a is infinity
# and every part is empty.
_COUNT = """
WITH bounds AS MATERIALIZED (
    SELECT a, b, m1, m2, d, e
      FROM (SELECT CASE WHEN oldest IS NULL THEN 'infinity'
                        ELSE greatest(%(since)s::timestamptz, oldest) END AS a,
                   coalesce(%(before)s::timestamptz, 'infinity') AS e
              FROM (SELECT min(created_at) AS oldest FROM proxy_requestlog
                     WHERE account_id = %(account)s) kept) ends,
           LATERAL (SELECT least({ceil_hour}, e) AS b) s1,
           LATERAL (SELECT greatest(date_trunc('hour', e, 'UTC'), b) AS d) s2,
           LATERAL (SELECT least({ceil_day}, d) AS m1) s3,
           LATERAL (SELECT greatest(date_trunc('day', d, 'UTC'), m1) AS m2) s4
)
SELECT (SELECT count(*) FROM proxy_requestlog
         WHERE {logs} AND created_at >= (SELECT a FROM bounds)
           AND created_at < (SELECT b FROM bounds))
     + (SELECT coalesce(sum({counted}), 0) FROM proxy_usagerollup
         WHERE {rollups} AND hour >= (SELECT b FROM bounds)
           AND hour < (SELECT m1 FROM bounds))
     + (SELECT coalesce(sum({counted}), 0) FROM proxy_usagerollupday
         WHERE {rollups}
           AND day >= (SELECT (m1 AT TIME ZONE 'UTC')::date FROM bounds)
           AND day < (SELECT (m2 AT TIME ZONE 'UTC')::date FROM bounds))
     + (SELECT coalesce(sum({counted}), 0) FROM proxy_usagerollup
         WHERE {rollups} AND hour >= (SELECT m2 FROM bounds)
           AND hour < (SELECT d FROM bounds))
     + (SELECT coalesce(sum({counted}), 0) FROM proxy_usagedelta
         WHERE {rollups} AND hour >= (SELECT b FROM bounds)
           AND hour < (SELECT d FROM bounds))
     + (SELECT count(*) FROM proxy_requestlog
         WHERE {logs} AND created_at >= (SELECT d FROM bounds)
           AND created_at < (SELECT e FROM bounds))
"""


def _ceil(unit: str, moment: str) -> str:
    """SQL: the start of the first ``unit`` (UTC) at or after ``moment``."""
    start = f"date_trunc('{unit}', {moment}, 'UTC')"
    step = f"CASE WHEN {start} < {moment} THEN interval '1 {unit}' ELSE '0' END"
    return f"{start} + {step}"


def request_logs_count(*, account: Account, filters: LogFilters) -> int:
    """How many logs ``filters`` select, exactly, and fast at any volume.

    The hourly rollups are written in the statement that writes the logs, and
    the daily ones by a trigger on the hourly ones in the same transaction, so
    a whole day's count is its daily rollups' and a whole hour's its hourly
    rollups'; the logs count only the parts of hours at the ends of the range
    (see _COUNT). A 90-day range reads some 90 rows of days per key × model,
    and at most 46 of hours. The rollups know keys, models, providers and
    errors; a count by finish reason or request id counts the logs."""
    if not filters.rollups_answer:
        return request_logs_matching(account=account, filters=filters).count()
    where = ["account_id = %(account)s"]
    params: dict = {
        "account": account.pk,
        "since": filters.since,
        "before": filters.before,
    }
    if filters.key_ids:
        where.append("api_key_id = ANY(%(keys)s)")
        params["keys"] = list(filters.key_ids)
    if filters.model:
        where.append("model = %(model)s")
        params["model"] = filters.model
    if filters.provider:
        where.append("provider = %(provider)s")
        params["provider"] = filters.provider
    logs = list(where)
    if filters.status == "ok":
        logs.append("status < 400")
    elif filters.status == "error":
        logs.append("status >= 400")
    sql = _COUNT.format(
        ceil_hour=_ceil("hour", "a"),
        ceil_day=_ceil("day", "b"),
        logs=" AND ".join(logs),
        rollups=" AND ".join(where),
        counted={None: "requests", "ok": "requests - errors", "error": "errors"}[
            filters.status
        ],
    )
    # One statement, so one snapshot: a settlement committing meanwhile is
    # counted in full (logs and rollups) or not at all. Without JIT: the
    # planner cannot know the bounds, guesses a costly scan of the logs and
    # would spend more compiling it (50-100 ms) than the count takes.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, params)
        return int(cursor.fetchone()[0])


# --- one log ----------------------------------------------------------------


def request_log_get(*, account: Account, log_id: uuid.UUID) -> RequestLog:
    """One of the account's request logs, with ``key_name``; DoesNotExist for
    another account's or an unknown id."""
    logs = RequestLog.objects.filter(account=account, id=log_id)
    if (window := id_window(log_id)) is not None:
        logs = logs.filter(created_at__gte=window[0], created_at__lte=window[1])
    return logs.annotate(key_name=F("api_key__name")).get()


def generation_ms(log: RequestLog) -> int:
    """How long the answer took to generate: from its first token to its end
    (the whole latency when no first token was timed)."""
    if log.ttft_ms is None:
        return max(log.latency_ms, 0)
    return max(log.latency_ms - log.ttft_ms, 0)


def throughput(log: RequestLog) -> float | None:
    """Output tokens per second of generation; None when it took no time."""
    ms = generation_ms(log)
    if ms <= 0:
        return None
    return round(log.completion_tokens * 1000 / ms, 1)


def log_price(*, log: RequestLog) -> ModelPrice | None:
    """The price version a request was billed at (None for one that was not:
    refused before it was priced)."""
    if log.price_id is None:
        return None
    return ModelPrice.objects.filter(pk=log.price_id).first()


# --- prices -----------------------------------------------------------------


def price_current(*, model_id: str, when: datetime) -> ModelPrice | None:
    """The price version of ``model_id`` in force at ``when``, or None."""
    return (
        ModelPrice.objects.filter(model_id=model_id, effective_from__lte=when)
        .order_by("-effective_from")
        .first()
    )


def price_at(*, model_id: str, when: datetime) -> ModelPrice:
    """The price version of ``model_id`` in force at ``when``: the latest one
    that started at or before it."""
    price = price_current(model_id=model_id, when=when)
    if price is None:
        raise ModelPrice.DoesNotExist(f"{model_id} has no price at {when.isoformat()}")
    return price
