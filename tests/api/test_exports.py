"""GET /api/v1/requests.csv and /api/v1/transactions.csv: streamed CSV, the
same rows as the lists, exact amounts, safe to open in a spreadsheet, and
never another account's."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test import AsyncClient
from rest_framework.test import APIClient

from apikeys.models import KeyKind
from money import csv_stream
from proxy import exports
from proxy.filters import LogFilters
from proxy.models import RequestLog
from tests.support.keys import bearer, make_key, make_log
from tests.support.platform import database_url

CSV_COLUMNS = [
    "id",
    "created_at",
    "key_id",
    "key_name",
    "model",
    "provider",
    "status",
    "http_status",
    "finish_reason",
    "streamed",
    "prompt_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cost_usd",
    "input_cost_usd",
    "cached_cost_usd",
    "cache_write_cost_usd",
    "output_cost_usd",
    "cost_bonus_usd",
    "cost_top_up_usd",
    "latency_ms",
    "ttft_ms",
    "usage_estimated",
    "cancelled",
    "error",
]


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


@pytest.fixture
def api_for():
    def make(user) -> APIClient:
        client = APIClient()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def logs(alice, bob):
    one, two = make_key(alice, name="one"), make_key(alice, name="=cmd|' /C calc'!A0")
    made = [
        make_log(one, at=at(1), finish_reason="stop"),
        make_log(
            two,
            at=at(2),
            model="+openai/gpt-5",
            status=502,
            error="-upstream said @SUM(1)",
            ttft_ms=None,
        ),
        make_log(
            one,
            at=at(3),
            streamed=True,
            prompt_tokens=1_000,
            cached_tokens=400,
            cache_write_tokens=100,
            completion_tokens=50,
            reasoning_tokens=30,
            cost_nanos=1_234_567_891,
            input_cost_nanos=1_000_000_000,
            cached_cost_nanos=7,
            cache_write_cost_nanos=234_567_000,
            cost_bonus_nanos=1_000_000_000,
            cost_topup_nanos=234_567_891,
            usage_estimated=True,
            cancelled=True,
            finish_reason="length",
        ),
    ]
    make_log(make_key(bob), at=at(2))
    return one.api_key, two.api_key, made


def rows_of(response) -> list[dict]:
    assert response.status_code == 200, response.content
    assert response.streaming is True
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode()
    reader = csv.DictReader(io.StringIO(text))
    assert reader.fieldnames == CSV_COLUMNS
    return list(reader)


def test_the_csv_streams_the_rows_of_the_list(logs, api_for, alice):
    client = api_for(alice)
    rows = rows_of(client.get("/api/v1/requests.csv"))
    listed = client.get("/api/v1/requests").json()["results"]
    assert [row["id"] for row in rows] == [row["id"] for row in listed]
    for row, item in zip(rows, listed, strict=True):
        assert datetime.fromisoformat(row["created_at"]) == datetime.fromisoformat(
            item["created_at"]
        )
        assert int(row["key_id"]) == item["key"]
        assert row["provider"] == item["provider"]
        assert row["status"] == item["status"]
        assert int(row["http_status"]) == item["http_status"]
        assert row["finish_reason"] == item["finish_reason"]
        for name in (
            "prompt_tokens",
            "cached_tokens",
            "cache_write_tokens",
            "completion_tokens",
            "reasoning_tokens",
            "latency_ms",
        ):
            assert int(row[name]) == item[name], name
        assert (row["ttft_ms"] or None) == (
            str(item["ttft_ms"]) if item["ttft_ms"] is not None else None
        )
        for name in ("streamed", "usage_estimated", "cancelled"):
            assert row[name] == str(item[name]).lower(), name
        # Amounts exactly as the JSON writes them.
        assert row["cost_usd"] == item["cost"]
        assert row["cost_bonus_usd"] == item["cost_bonus"]
        assert row["cost_top_up_usd"] == item["cost_top_up"]
        kinds = ("input", "cached", "cache_write", "output")
        assert sum(Decimal(row[f"{k}_cost_usd"]) for k in kinds) == Decimal(
            row["cost_usd"]
        )


def test_the_csv_has_exact_amounts(logs, api_for, alice):
    rows = rows_of(api_for(alice).get("/api/v1/requests.csv?from=2026-03-03"))
    assert [
        (
            row["cost_usd"],
            row["input_cost_usd"],
            row["cached_cost_usd"],
            row["cache_write_cost_usd"],
            row["output_cost_usd"],
            row["cost_bonus_usd"],
            row["cost_top_up_usd"],
        )
        for row in rows
    ] == [
        (
            "1.234567891",
            "1.000000000",
            "0.000000007",
            "0.234567000",
            "0.000000884",
            "1.000000000",
            "0.234567891",
        )
    ]


def test_text_a_spreadsheet_would_run_is_quoted(logs, api_for, alice):
    rows = rows_of(api_for(alice).get("/api/v1/requests.csv?status=error"))
    assert [(r["key_name"], r["model"], r["error"]) for r in rows] == [
        ("'=cmd|' /C calc'!A0", "'+openai/gpt-5", "'-upstream said @SUM(1)")
    ]


def test_the_csv_takes_the_lists_filters(logs, api_for, alice):
    one, two, made = logs
    client = api_for(alice)
    for query in (
        f"key={one.pk}",
        f"key={two.pk}&status=error",
        "from=2026-03-02&to=2026-03-02",
        "finish_reason=length",
        f"request_id={made[0].id}",
        "model=nothing",
    ):
        rows = rows_of(client.get(f"/api/v1/requests.csv?{query}"))
        listed = client.get(f"/api/v1/requests?{query}").json()["results"]
        assert [r["id"] for r in rows] == [r["id"] for r in listed], query


def test_the_file_is_named_by_its_range(logs, api_for, alice):
    client = api_for(alice)
    named = {
        "from=2026-03-01&to=2026-03-31": "requests_2026-03-01_to_2026-03-31.csv",
        "from=2026-03-01T10:30:00Z": "requests_2026-03-01T103000Z_to_latest.csv",
        "": "requests_first_to_latest.csv",
    }
    for query, filename in named.items():
        response = client.get(f"/api/v1/requests.csv?{query}")
        assert response["Content-Disposition"] == (f'attachment; filename="{filename}"')


def test_bad_filters_are_a_json_400_naming_them(api_for, alice):
    response = api_for(alice).get("/api/v1/requests.csv?to=someday&key=x")
    assert response.status_code == 400
    assert set(response.json()) == {"to", "key"}


def test_csv_is_answered_whatever_accept_asks(logs, api_for, alice):
    response = api_for(alice).get("/api/v1/requests.csv", HTTP_ACCEPT="text/csv")
    assert len(rows_of(response)) == 3


def test_another_accounts_logs_are_never_exported(logs, api_for, bob):
    one, _, made = logs
    client = api_for(bob)
    assert len(rows_of(client.get("/api/v1/requests.csv"))) == 1
    assert rows_of(client.get(f"/api/v1/requests.csv?key={one.pk}")) == []
    assert rows_of(client.get(f"/api/v1/requests.csv?request_id={made[0].id}")) == []


def test_a_management_key_exports_and_no_one_else_does(logs, alice):
    secret = make_key(alice, kind=KeyKind.MANAGEMENT).secret
    assert len(rows_of(bearer(secret).get("/api/v1/requests.csv"))) == 3
    for path in ("/api/v1/requests.csv", "/api/v1/transactions.csv"):
        assert APIClient().get(path).status_code in (401, 403)


def test_the_csv_comes_in_chunks_and_stops_cleanly(alice, api_for, monkeypatch):
    key = make_key(alice)
    RequestLog.objects.bulk_create(
        RequestLog(
            account_id=alice.account.id,
            api_key=key.api_key,
            model="openai/gpt-5",
            provider="openai",
            endpoint="chat",
            status=200,
            created_at=at(1) + timedelta(seconds=n),
        )
        for n in range(500)
    )
    monkeypatch.setattr(csv_stream, "CHUNK_BYTES", 4_096)
    response = api_for(alice).get("/api/v1/requests.csv")
    chunks = list(response.streaming_content)
    assert chunks[0].startswith(b"id,created_at,")  # the header comes first
    assert len(chunks) > 5
    assert all(4_096 <= len(chunk) < 8_192 for chunk in chunks[1:-1])
    assert b"".join(chunks).count(b"\n") == 501

    # A download cut short (the client went away) cancels the COPY, and the
    # connection serves the next query.
    stream = exports.request_logs_csv(account=alice.account, filters=LogFilters())
    next(stream), next(stream)
    stream.close()
    assert RequestLog.objects.count() == 500


def test_an_export_runs_at_most_its_time_limit(alice, api_for, settings, caplog):
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        [default] = cursor.fetchone()
    settings.CSV_EXPORT_MAX_SECONDS = 0.3
    slow = csv_stream.csv_copy(
        sql="SELECT g FROM generate_series(1, 3) g, pg_sleep(1)",
        params=[],
        header=("n",),
    )
    with pytest.raises(psycopg.errors.QueryCanceled):
        list(slow)
    assert "CSV export stopped after 300ms" in caplog.text
    # The connection serves the next query, without the export's time limit.
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone() == (default,)

    settings.CSV_EXPORT_MAX_SECONDS = 60
    make_log(make_key(alice), at=at(1))
    assert len(rows_of(api_for(alice).get("/api/v1/requests.csv"))) == 1
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone() == (default,)


@pytest.mark.django_db(transaction=True)
def test_an_export_whose_client_stops_reading_ends_at_its_time_limit(
    settings, monkeypatch, caplog
):
    """A client that stops reading cannot hold the export's snapshot (and its
    locks on the logs) beyond its time limit, though PostgreSQL, waiting to
    write, may not hear the statement timeout."""
    settings.CSV_EXPORT_MAX_SECONDS = 3.0
    # The timer before the statement timeout: PostgreSQL may hear the timeout
    # sooner or later, but the timer ends it whatever it waits for.
    monkeypatch.setattr(csv_stream, "STALLED_GRACE_SECONDS", -2.0)
    monkeypatch.setattr(csv_stream, "CHUNK_BYTES", 4_096)
    many = "SELECT g, repeat('x', 200) FROM generate_series(1, 5000000) g"
    stream = csv_stream.csv_copy(sql=many, params=[], header=("n", "text"))
    try:
        next(stream), next(stream)  # the header, then the first rows; no more
        started = time.monotonic()
        state = statement_state(connection.connection.info.backend_pid, until=10)
        # The COPY ended with its connection, its snapshot and locks released.
        assert state is None
        assert time.monotonic() - started < 5
        assert "CSV export ended: its client stopped reading" in caplog.text
        # What the client had not read yet, then the end of the download.
        with pytest.raises(psycopg.Error):
            list(stream)
    finally:
        stream.close()
        connection.close()


def statement_state(pid: int, *, until: float) -> str | None:
    """The state of backend ``pid`` once it no longer runs a statement (None:
    it is gone), or after ``until`` seconds."""
    started = time.monotonic()
    url = database_url(connection.settings_dict)
    # Autocommit: a transaction would see the activity as it first was.
    with psycopg.connect(url, autocommit=True) as watcher:
        while True:
            row = watcher.execute(
                "SELECT state FROM pg_stat_activity WHERE pid = %s", [pid]
            ).fetchone()
            if row is None or row[0] != "active":
                return row and row[0]
            if time.monotonic() - started > until:
                return row[0]
            time.sleep(0.05)


def test_under_asgi_the_csv_is_pulled_chunk_by_chunk_from_the_copy(
    logs, alice, monkeypatch
):
    """Under ASGI Django would read a plain iterator whole before sending it:
    the response iterates asynchronously, each chunk taken from the COPY in the
    request's thread (here the test's, with its connection)."""
    monkeypatch.setattr(csv_stream, "CHUNK_BYTES", 64)

    async def download():
        client = AsyncClient()
        await client.aforce_login(alice)
        response = await client.get("/api/v1/requests.csv")
        assert response.is_async
        return response, [chunk async for chunk in response.streaming_content]

    response, chunks = async_to_sync(download)()
    assert response.status_code == 200
    assert len(chunks) > 3
    text = b"".join(chunks).decode()
    assert [row["id"] for row in csv.DictReader(io.StringIO(text))] == [
        str(log.id) for log in reversed(logs[2])
    ]
    with connection.cursor() as cursor:  # the connection is not left in a COPY
        cursor.execute("SELECT 1")


# --- transactions ---------------------------------------------------------------


def test_transactions_csv_has_the_rows_of_the_history(alice, api_for):
    from tests.support.world import grant

    grant(alice, "12.5", reason='=HYPERLINK("http://x")')
    client = api_for(alice)
    response = client.get("/api/v1/transactions.csv")
    assert response.streaming is True
    assert response["Content-Disposition"] == (
        'attachment; filename="transactions_first_to_latest.csv"'
    )
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    listed = client.get("/api/v1/transactions").json()["results"]
    assert [
        (r["id"], r["type"], r["amount_usd"], r["method"], r["invoice_url"])
        for r in rows
    ] == [
        (t["id"], t["type"], t["amount"], t["method"], t["invoice_url"] or "")
        for t in listed
    ]
    assert [r["description"] for r in rows] == [
        '\'=HYPERLINK("http://x")',
        "welcome gift",
    ]
    assert rows[0]["amount_usd"] == "12.500000000"


def test_transactions_csv_takes_a_range_and_is_the_accounts_own(alice, bob, api_for):
    def rows(user, query=""):
        response = api_for(user).get(f"/api/v1/transactions.csv?{query}")
        assert response.status_code == 200
        text = b"".join(response.streaming_content).decode()
        return list(csv.DictReader(io.StringIO(text)))

    assert len(rows(alice)) == 1  # the welcome gift
    assert rows(bob) == []
    assert rows(alice, "to=2020-01-01") == []
    today = datetime.now(UTC).date().isoformat()
    assert len(rows(alice, f"from={today}&to={today}")) == 1
    bad = api_for(alice).get("/api/v1/transactions.csv?from=2026-13-01")
    assert bad.status_code == 400
    assert "from" in bad.json()
