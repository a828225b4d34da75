"""CSV exports streamed from PostgreSQL, amounts exact: PostgreSQL writes the
CSV (``COPY (SELECT ...) TO STDOUT``), amounts included (``usd_sql``, as the
JSON API writes them), and the response passes it on in chunks as it comes, so
that an export of millions of rows is never held in memory, here or in the
database's client. Nothing here knows what is exported: each export (the
request logs, the transaction history) gives its SELECT.

Under ASGI (how the site is served), Django reads a synchronous iterator of a
streaming response to its end before sending a byte; the response is given an
asynchronous iterator instead, that takes each chunk from the COPY in the
request's own thread (``sync_to_async(thread_sensitive=True)``: the thread of
its database connection). Under WSGI (the test client) the plain iterator
streams as it is.

An export holds its snapshot (and its locks, on every partition of a
partitioned table it reads) until its COPY ends; a client that reads slowly,
or stops reading, would hold them as long as it likes (keeping VACUUM from the
rows deleted meanwhile, and a partition's drop waiting). So one export runs at
most ``CSV_EXPORT_MAX_SECONDS`` (30 minutes by default; a 30-day export of
millions of request logs takes seconds): PostgreSQL's ``statement_timeout``
ends its COPY then. A cancel is not heard while PostgreSQL waits to write to a
client that stopped reading, so a timer ends that connection
(``pg_terminate_backend``) ``STALLED_GRACE_SECONDS`` later if the COPY is still
there. Either way the download breaks off, unfinished.

Cells are safe to open in a spreadsheet: text that callers wrote (a model id,
an error, a key's name) and that starts with = + - @ (or a tab or a carriage
return) is prefixed with ', so that it is never read as a formula.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, time, timedelta

import psycopg
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import DatabaseError, connection, connections
from django.http import StreamingHttpResponse
from rest_framework.negotiation import BaseContentNegotiation

logger = logging.getLogger(__name__)

# How long after CSV_EXPORT_MAX_SECONDS an export's COPY still running is
# ended with its connection (see above).
STALLED_GRACE_SECONDS = 10.0

# The bytes handed on at once: large enough that the hop between threads costs
# nothing per row, small enough to start the download at once.
CHUNK_BYTES = 256 * 1024

# A text cell that a spreadsheet would read as a formula starts with one of
# these (OWASP's list): = + - @, a tab or a carriage return, by their codes
# (comparing numbers costs PostgreSQL a fraction of comparing text).
FORMULA_START = tuple(ord(char) for char in "=+-@\t\r")


# --- SQL pieces -----------------------------------------------------------------


def usd_sql(expression: str) -> str:
    """Nano-USD as an exact decimal with nine places (``0.000325000``), as
    the JSON API writes them: numeric arithmetic, no float."""
    return f"(({expression})::numeric * 0.000000001)"


def safe_text_sql(expression: str) -> str:
    """Text a spreadsheet will not take for a formula."""
    return (
        f"CASE WHEN ascii({expression}) IN {FORMULA_START} "
        f"THEN '''' || {expression} ELSE {expression} END"
    )


def utc_sql(expression: str) -> str:
    """A timestamptz as ISO 8601 in UTC, to the microsecond."""
    return (
        f"to_char(({expression}) AT TIME ZONE 'UTC', "
        '\'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\')'
    )


# --- COPY and the response --------------------------------------------------------


def csv_copy(*, sql: str, params, header: tuple[str, ...]) -> Iterator[bytes]:
    """Chunks of CSV: ``header``, then the rows of ``sql`` as PostgreSQL's
    COPY writes them. Nothing is read before the first chunk is asked for;
    closing the iterator early cancels the COPY and leaves the connection
    ready for the next query. The COPY runs at most CSV_EXPORT_MAX_SECONDS."""
    yield (",".join(header) + "\r\n").encode()
    connection.ensure_connection()
    buffer = bytearray()
    # Marked, so that the timer ends this COPY and nothing else.
    marker = f"/* CSV export {uuid.uuid4().hex} */ "
    copy_sql = f"{marker}COPY ({sql}) TO STDOUT WITH (FORMAT csv)"  # noqa: S608
    seconds = settings.CSV_EXPORT_MAX_SECONDS
    timeout = f"{max(1, round(seconds * 1000))}ms"
    stalled = threading.Timer(
        seconds + STALLED_GRACE_SECONDS,
        _stalled_copy_end,
        kwargs={"pid": connection.connection.info.backend_pid, "marker": marker},
    )
    stalled.daemon = True
    with connection.cursor() as cursor:
        # A COPY cut short is cancelled, which ends a transaction it is in: in
        # one (a test's), it runs in a savepoint that the cancellation ends.
        savepoint = connection.savepoint() if connection.in_atomic_block else None
        try:
            # For this connection's session (the COPY runs in a transaction of
            # its own): set back below, before the connection serves another.
            cursor.execute(
                "SELECT set_config('statement_timeout', %s, false)", [timeout]
            )
            stalled.start()
            # Django's cursor wraps psycopg's, whose copy() streams.
            with cursor.cursor.copy(copy_sql, params) as copy:
                for data in copy:
                    buffer += data
                    if len(buffer) >= CHUNK_BYTES:
                        yield bytes(buffer)
                        buffer.clear()
        except BaseException as error:
            if isinstance(error, psycopg.errors.QueryCanceled):
                logger.warning("CSV export stopped after %s: %s", timeout, error)
            if savepoint:
                connection.savepoint_rollback(savepoint)
            raise
        finally:
            stalled.cancel()
            # A connection that broke is closed by Django at the request's end.
            with contextlib.suppress(DatabaseError):
                cursor.execute("RESET statement_timeout")
        if savepoint:
            connection.savepoint_commit(savepoint)
    if buffer:
        yield bytes(buffer)


def _stalled_copy_end(*, pid: int, marker: str) -> None:
    """End backend ``pid`` if it still runs the COPY marked ``marker`` (its
    client stopped reading, so the statement timeout was not heard)."""
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE pid = %s AND state = 'active' AND starts_with(query, %s)",
                [pid, marker],
            )
            if cursor.fetchone():
                logger.warning("CSV export ended: its client stopped reading")
    finally:
        connections["default"].close()


def csv_response(request, chunks: Iterator[bytes], *, filename: str):
    """A streamed CSV download of ``chunks``."""
    # DRF's Request wraps Django's.
    asgi = isinstance(getattr(request, "_request", request), ASGIRequest)
    content = _pulled(chunks) if asgi else chunks
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


async def _pulled(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    pull = sync_to_async(_next, thread_sensitive=True)
    try:
        while (chunk := await pull(chunks)) is not None:
            yield chunk
    finally:
        # A client that went away: end the COPY in its own thread.
        await sync_to_async(chunks.close, thread_sensitive=True)()


def _next(chunks: Iterator[bytes]) -> bytes | None:
    # StopIteration cannot cross into a coroutine: None ends the stream.
    return next(chunks, None)


def range_filename(prefix: str, since: datetime | None, before: datetime | None):
    """``requests_2026-03-01_to_2026-03-31.csv``: the range, both ends
    inclusive, as dates when they are whole days."""

    def moment(value: datetime) -> str:
        if value.time() == time.min:
            return value.date().isoformat()
        return value.strftime("%Y-%m-%dT%H%M%SZ")

    start = moment(since) if since else "first"
    if before is None:
        end = "latest"
    elif before.time() == time.min:
        end = (before - timedelta(days=1)).date().isoformat()
    else:
        end = moment(before - timedelta(microseconds=1))
    return f"{prefix}_{start}_to_{end}.csv"


class CsvNegotiation(BaseContentNegotiation):
    """A CSV download answers CSV whatever ``Accept`` asks (errors before it
    starts are JSON, as everywhere in the API)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
