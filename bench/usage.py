"""What a customer with 10 million request logs waits for: cost analytics, a
page of request logs at any depth, and a 30-day CSV export, over HTTP.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/agipower_bench_usage \\
        .venv/bin/python bench/usage.py [--logs 10000000] [--reuse] [--quick]

(``DATABASE_URL`` defaults to the database above. Without ``--reuse`` it is
dropped and created anew; it is kept afterwards, so that ``--reuse`` measures
again without generating.)

The data: one account with ``--logs`` request logs over the 90 days before
now, from 8 keys of uneven use, on 10 models of the shipped catalog
(``proxy/catalog.yaml``) from 3 providers, each billed at its catalog price
version: streamed and not, cached reads and cache writes, reasoning tokens,
errors (400, 429, 500, 502) and clients that went away (499, estimated usage),
a busier day than night (UTC). Each log's charge by kind of token sums to
its charge, as ``proxy_batch`` writes them. The logs are written by SQL
(``INSERT … SELECT`` from ``generate_series``, in chunks, ``--jobs``
connections at once) into the partitioned ``proxy_requestlog`` with all its
indexes (its foreign keys' triggers skipped: the generator names only the
account and its keys, which is checked afterwards); then the hourly rollups
(``proxy_usagerollup``) are made from the logs by one ``INSERT … SELECT …
GROUP BY``, exactly what the settle batches would have added up, and the
tables are vacuumed and analyzed (as autovacuum would have).

The measures, against the platform as ``serve`` runs it (uvicorn,
``agipower.asgi``) with a management key, one keep-alive connection (httpx),
one request at a time, after a warm-up; the windows end at the newest log:

- ``GET /api/v1/balance``, a baseline: what any request of the API costs;
- ``GET /api/v1/analytics/cost``, the last 30 days by day, grouped by model and
  by key: p50 and p95 of ``--runs`` requests (target p50 <= 100 ms);
- ``GET /api/v1/requests``: the first page, every page while following
  ``next`` ``--deep-pages`` deep, then that deep page again, and the page
  30 days back; each also filtered by a key and by a model (target p50 <= 50 ms
  at any depth);
- ``GET /api/v1/requests.csv`` for the last 30 days: rows per second, counted
  while streaming, checked against the logs in the range, and the resident
  memory of the platform's processes before, at its peak during, and after
  the export (target >= 100k rows/s, memory flat).

Medians are what to compare: the machine may be shared (the load average is
printed before and after). Exits 1 if a check fails (not on a missed target).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault(
    "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/agipower_bench_usage"
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agipower.settings")

EMAIL = "usage@bench.local"
DAYS = 90
BONUS_DAYS = 7  # the welcome bonus paid the first week; top-ups the rest

# name, share of the requests
KEYS = [
    ("production", 0.34),
    ("chatbot", 0.20),
    ("batch-jobs", 0.15),
    ("staging", 0.10),
    ("evals", 0.08),
    ("mobile-app", 0.06),
    ("research", 0.05),
    ("ci", 0.02),
]
# catalog id, share of the requests, median prompt and completion tokens,
# whether its completions reason
MODELS = [
    ("openai/gpt-5-mini", 0.22, 1_400, 450, True),
    ("openai/gpt-4o-mini", 0.16, 900, 220, False),
    ("openai/gpt-5", 0.12, 2_200, 700, True),
    ("anthropic/claude-sonnet-4-5", 0.12, 3_500, 600, False),
    ("google/gemini-2.5-flash", 0.10, 1_600, 380, True),
    ("openai/text-embedding-3-small", 0.08, 400, 0, False),
    ("anthropic/claude-haiku-4-5", 0.07, 1_800, 300, False),
    ("openai/gpt-5-nano", 0.06, 700, 250, True),
    ("google/gemini-2.5-pro", 0.05, 4_000, 900, True),
    ("openai/gpt-4.1", 0.02, 2_500, 500, False),
]
# A diurnal swing: the busiest hour (about 11:00 UTC) sees ~4x the requests of
# the quietest (about 23:00).
SWING = 0.6
PEAK = 0.6

TARGET_ANALYTICS_MS = 100
TARGET_PAGE_MS = 50
TARGET_CSV_ROWS_PER_S = 100_000


# --- the database ------------------------------------------------------------------


def _server_url() -> tuple[str, str]:
    base, name = os.environ["DATABASE_URL"].rsplit("/", 1)
    return base, name.split("?", 1)[0]


def database_recreate() -> None:
    import psycopg

    base, name = _server_url()
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def database_exists() -> bool:
    import psycopg

    base, name = _server_url()
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        return bool(
            conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [name]
            ).fetchone()
        )


def connect():
    import psycopg

    return psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)


@dataclass
class World:
    account_id: int
    key_ids: list[int]  # in the order of KEYS
    logs: int
    newest: datetime
    oldest: datetime


def world_find() -> World | None:
    """The bench account and what it holds, if the database has them."""
    with connect() as conn:
        if not conn.execute("SELECT to_regclass('proxy_usagerollup')").fetchone()[0]:
            return None
        row = conn.execute(
            "SELECT a.id FROM accounts_account a JOIN accounts_user u "
            "ON u.id = a.owner_id WHERE u.email = %s",
            [EMAIL],
        ).fetchone()
        if row is None:
            return None
        account_id = row[0]
        key_ids = [
            key_id
            for (key_id,) in conn.execute(
                "SELECT id FROM apikeys_apikey WHERE account_id = %s AND kind = 'payg' "
                "ORDER BY id",
                [account_id],
            )
        ]
        # The rollups count every log: a cheap count of 10 million rows.
        logs, oldest, newest = conn.execute(
            "SELECT coalesce(sum(requests), 0), min(hour), max(hour) "
            "FROM proxy_usagerollup WHERE account_id = %s",
            [account_id],
        ).fetchone()
        if not logs:
            return None
        newest, oldest = conn.execute(
            "SELECT (SELECT max(created_at) FROM proxy_requestlog "
            "         WHERE account_id = %(a)s AND created_at >= %(n)s),"
            "       (SELECT min(created_at) FROM proxy_requestlog "
            "         WHERE account_id = %(a)s AND created_at < %(o)s)",
            {"a": account_id, "n": newest, "o": oldest + timedelta(hours=1)},
        ).fetchone()
    return World(account_id, key_ids, int(logs), newest, oldest)


def populate(*, start: datetime) -> tuple[int, list[int]]:
    """The account, its keys and the catalog (prices in force since before
    ``start``): (account id, key ids)."""
    import yaml

    from accounts.models import Account
    from accounts.services import user_signup
    from apikeys.models import ApiKey
    from apikeys.services import key_create
    from proxy.catalog_import import catalog_import

    before = start - timedelta(days=1)
    data = yaml.safe_load((REPO_ROOT / "proxy" / "catalog.yaml").read_text())
    catalog_import(data=data, now=before)
    account = user_signup(email=EMAIL, password="", full_name="Usage Bench").account
    Account.objects.filter(pk=account.pk).update(created_at=before)
    key_ids = []
    for name, _ in KEYS:
        key = key_create(account=account, name=name).api_key
        key_ids.append(key.pk)
    ApiKey.objects.filter(pk__in=key_ids).update(created_at=before)
    return account.pk, key_ids


# Each row's draws, then what they make: a request as the proxy logs it (each
# step materialized: inlined, the steps' expressions would be copied into one
# another many times over). The
# charge by kind is what proxy.metering.cost_parts and proxy_batch make of it:
# input, cached and cache-write costs rounded down, the output the rest of the
# cost rounded up.
GENERATE = """
INSERT INTO proxy_requestlog (
    id, account_id, api_key_id, model, provider, endpoint, status, error,
    streamed, prompt_tokens, cached_tokens, cache_write_tokens,
    completion_tokens, reasoning_tokens, usage_estimated, cost_nanos,
    cost_topup_nanos, cost_bonus_nanos, uncapped_cost_nanos, over_reported,
    input_cost_nanos, cached_cost_nanos, cache_write_cost_nanos,
    output_cost_nanos, latency_ms, ttft_ms, finish_reason, cancelled,
    upstream_model, price_id, created_at)
WITH draw AS MATERIALIZED (
    SELECT (i + random()) * %(days)s / %(n)s AS x,
           random() AS r_key, random() AS r_model, random() AS r_status,
           random() AS r_stream, random() AS r_cache, random() AS r_reason,
           random() AS r_finish, random() AS r_speed,
           -- standard normal draws (Box-Muller)
           sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS z_prompt,
           sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS z_output,
           sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS z_ttft
      FROM generate_series(%(lo)s::bigint, %(hi)s::bigint - 1) AS i
), placed AS MATERIALIZED (
    SELECT d.*,
           -- a monotone warp of each day: more requests in the afternoon
           %(start)s::timestamptz + interval '1 day' * (
               floor(x) + (x - floor(x))
               - %(swing)s * (sin(2 * pi() * (x - floor(x) - %(peak)s))
                              + sin(2 * pi() * %(peak)s)) / (2 * pi())) AS at,
           width_bucket(r_key, %(key_edges)s::float8[]) AS k,
           width_bucket(r_model, %(model_edges)s::float8[]) AS m,
           CASE WHEN r_status < 0.955 THEN 200 WHEN r_status < 0.965 THEN 400
                WHEN r_status < 0.975 THEN 429 WHEN r_status < 0.985 THEN 502
                WHEN r_status < 0.990 THEN 500 ELSE 499 END AS st
      FROM draw d
), request AS MATERIALIZED (
    SELECT p.*,
           (%(embedding)s::boolean[])[m] AS embed,
           CASE WHEN (%(embedding)s::boolean[])[m] AND st = 499 THEN 200
                ELSE st END AS status,
           least(greatest(round(exp(ln((%(prompt)s::int[])[m]) + z_prompt)), 8),
                 190000)::int AS prompt0,
           CASE WHEN (%(embedding)s::boolean[])[m] THEN 0
                ELSE least(greatest(round(exp(ln((%(output)s::int[])[m])
                                              + 0.9 * z_output)), 1), 32000)::int
           END AS output0
      FROM placed p
), usage AS MATERIALIZED (
    SELECT r.*,
           CASE WHEN status IN (200, 499) THEN prompt0 ELSE 0 END AS prompt,
           CASE WHEN status = 200 THEN output0
                WHEN status = 499 THEN floor(output0 * r_finish)::int
                ELSE 0 END AS completion,
           NOT embed AND (r_stream < 0.6 OR status = 499) AS streamed
      FROM request r
), tokens AS MATERIALIZED (
    SELECT u.*,
           CASE WHEN NOT embed AND prompt >= 1024 AND r_cache < 0.45
                THEN floor(prompt * (0.15 + 0.8 * r_cache / 0.45))::int
                ELSE 0 END AS cached,
           CASE WHEN (%(cache_writes)s::boolean[])[m] AND prompt >= 1024
                     AND r_cache >= 0.45 AND r_cache < 0.60
                THEN floor(prompt * (0.3 + 0.6 * (r_cache - 0.45) / 0.15))::int
                ELSE 0 END AS written,
           CASE WHEN (%(reasoning)s::boolean[])[m]
                THEN floor(completion * (0.2 + 0.7 * r_reason))::int
                ELSE 0 END AS reasoning,
           CASE WHEN streamed AND status IN (200, 499)
                THEN greatest(round(exp(ln(450) + 0.5 * z_ttft)), 40)::int
           END AS ttft
      FROM usage u
), priced AS MATERIALIZED (
    SELECT t.*,
           (prompt - cached - written)::bigint * (%(p_input)s::bigint[])[m]
               / 1000000 AS input_c,
           cached::bigint * (%(p_cached)s::bigint[])[m] / 1000000 AS cached_c,
           written::bigint * (%(p_write)s::bigint[])[m] / 1000000 AS write_c,
           ((prompt - cached - written)::bigint * (%(p_input)s::bigint[])[m]
            + cached::bigint * (%(p_cached)s::bigint[])[m]
            + written::bigint * (%(p_write)s::bigint[])[m]
            + completion::bigint * (%(p_output)s::bigint[])[m]
            + 999999) / 1000000 AS cost
      FROM tokens t
)
SELECT
    (lpad(to_hex(floor(extract(epoch FROM at) * 1000)::bigint), 12, '0')
     || '7' || lpad(to_hex(floor(random() * 4096)::int), 3, '0')
     || to_hex(8 + floor(random() * 4)::int)
     || lpad(to_hex(floor(random() * 1152921504606846976)::bigint), 15, '0')
    )::uuid,
    %(account)s, (%(keys)s::bigint[])[k], (%(models)s::text[])[m],
    (%(providers)s::text[])[m],
    CASE WHEN embed THEN 'embedding' ELSE 'chat' END,
    status,
    CASE status
        WHEN 400 THEN 'Upstream refused the request: max_tokens is too large'
        WHEN 429 THEN 'Upstream rate limit reached, try again shortly'
        WHEN 500 THEN 'Upstream answered 500 Internal Server Error'
        WHEN 502 THEN 'Upstream closed the connection before answering'
        ELSE '' END,
    streamed, prompt, cached, written, completion, reasoning,
    status = 499, cost,
    CASE WHEN at < %(bonus_until)s THEN 0 ELSE cost END,
    CASE WHEN at < %(bonus_until)s THEN cost ELSE 0 END,
    cost, false,
    input_c, cached_c, write_c, cost - input_c - cached_c - write_c,
    CASE status
        WHEN 400 THEN 40 + floor(r_speed * 200)::int
        WHEN 429 THEN 60 + floor(r_speed * 300)::int
        WHEN 500 THEN 800 + floor(r_speed * 4000)::int
        WHEN 502 THEN 2000 + floor(r_speed * 20000)::int
        ELSE coalesce(ttft, greatest(round(exp(ln(450) + 0.5 * z_ttft)), 40)::int)
             + floor(completion * (8 + 25 * r_speed))::int END,
    ttft,
    CASE WHEN status <> 200 OR embed THEN ''
         WHEN r_finish < 0.86 THEN 'stop'
         WHEN r_finish < 0.90 THEN 'length'
         ELSE 'tool_calls' END,
    status = 499,
    (%(upstreams)s::text[])[m], (%(prices)s::bigint[])[m],
    at
  FROM priced
"""

ROLLUP = """
INSERT INTO proxy_usagerollup (
    account_id, hour, api_key_id, model, provider, requests, errors,
    prompt_tokens, cached_tokens, cache_write_tokens, completion_tokens,
    reasoning_tokens, cost_nanos, input_cost_nanos, cached_cost_nanos,
    cache_write_cost_nanos, output_cost_nanos)
SELECT account_id, date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
       api_key_id, model, provider, count(*), count(*) FILTER (WHERE status >= 400),
       sum(prompt_tokens), sum(cached_tokens), sum(cache_write_tokens),
       sum(completion_tokens), sum(reasoning_tokens), sum(cost_nanos),
       sum(input_cost_nanos), sum(cached_cost_nanos), sum(cache_write_cost_nanos),
       sum(output_cost_nanos)
  FROM proxy_requestlog
 WHERE account_id = %s
 GROUP BY 1, 2, 3, 4, 5
"""


def _edges(weights: list[float]) -> list[float]:
    """Lower bounds of each choice's slice of [0, 1), for width_bucket."""
    total = sum(weights)
    edges, below = [], 0.0
    for weight in weights:
        edges.append(below / total)
        below += weight
    return edges


def generate(
    *,
    account_id: int,
    key_ids: list[int],
    logs: int,
    start: datetime,
    jobs: int,
    chunk: int,
) -> None:
    from proxy.models import CatalogModel, ModelPrice

    catalog = {m.id: m for m in CatalogModel.objects.select_related("provider")}
    prices = {}
    for price in ModelPrice.objects.order_by("model_id", "-effective_from"):
        prices.setdefault(price.model_id, price)
    models = [catalog[model_id] for model_id, *_ in MODELS]
    params = {
        "days": DAYS,
        "n": logs,
        "start": start,
        "swing": SWING,
        "peak": PEAK,
        "bonus_until": start + timedelta(days=BONUS_DAYS),
        "account": account_id,
        "keys": key_ids,
        "key_edges": _edges([share for _, share in KEYS]),
        "model_edges": _edges([share for _, share, *_ in MODELS]),
        "models": [m.id for m in models],
        "providers": [m.provider.name for m in models],
        "upstreams": [m.upstream for m in models],
        "embedding": [m.kind == "embedding" for m in models],
        "cache_writes": [m.provider.name == "anthropic" for m in models],
        "reasoning": [reasoning for *_, reasoning in MODELS],
        "prompt": [prompt for _, _, prompt, _, _ in MODELS],
        "output": [max(output, 1) for _, _, _, output, _ in MODELS],
        "prices": [prices[m.id].pk for m in models],
        "p_input": [prices[m.id].input_nanos for m in models],
        "p_cached": [prices[m.id].cached_input_nanos for m in models],
        "p_write": [prices[m.id].cache_write_nanos for m in models],
        "p_output": [prices[m.id].output_nanos for m in models],
    }
    with connect() as conn:
        # Every month the logs fall in has its partition before any is written.
        month = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        while month <= start + timedelta(days=DAYS):
            conn.execute("SELECT proxy_requestlog_month(%s)", [month])
            month = (month + timedelta(days=32)).replace(day=1)

    chunks = [(lo, min(lo + chunk, logs)) for lo in range(0, logs, chunk)]
    done = [0]
    lock = threading.Lock()
    began = time.perf_counter()

    def write(bounds: tuple[int, int]) -> None:
        lo, hi = bounds
        with connect() as conn:
            conn.execute("SET synchronous_commit = off")
            # JIT would spend seconds compiling this statement's expressions.
            conn.execute("SET jit = off")
            # No foreign key triggers (a third of the time): every row names the
            # account and one of its keys, made above. data_check counts any
            # that would not.
            conn.execute("SET session_replication_role = replica")
            conn.execute(GENERATE, {**params, "lo": lo, "hi": hi})
        with lock:
            step = max(logs // 10, 1)
            crossed = (done[0] + hi - lo) // step > done[0] // step
            done[0] += hi - lo
            if crossed or done[0] == logs:
                elapsed = time.perf_counter() - began
                print(
                    f"  {done[0]:>12,} logs  {elapsed:6.0f} s  "
                    f"{done[0] / elapsed:9,.0f} logs/s",
                    flush=True,
                )

    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(write, chunks))


def rollups_and_analyze(account_id: int) -> None:
    with connect() as conn:
        began = time.perf_counter()
        conn.execute("SET work_mem = '256MB'")
        conn.execute(
            "DELETE FROM proxy_usagerollup WHERE account_id = %s", [account_id]
        )
        conn.execute(ROLLUP, [account_id])
        print(f"  rollups in {time.perf_counter() - began:.0f} s", flush=True)
        began = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("VACUUM (ANALYZE) proxy_requestlog")
        conn.execute("VACUUM (ANALYZE) proxy_usagerollup")
        print(
            f"  vacuum and analyze in {time.perf_counter() - began:.0f} s", flush=True
        )


def data_check(world: World) -> list[tuple[str, bool, str]]:
    """The generated data is whole: each log's charge by kind and by pool sums
    to its charge, and the rollups sum to the logs."""
    with connect() as conn:
        bad_parts, bad_pools = conn.execute(
            "SELECT count(*) FILTER (WHERE input_cost_nanos + cached_cost_nanos "
            "  + cache_write_cost_nanos + output_cost_nanos <> cost_nanos "
            "  OR least(input_cost_nanos, cached_cost_nanos, cache_write_cost_nanos,"
            "           output_cost_nanos) < 0),"
            "       count(*) FILTER (WHERE cost_topup_nanos + cost_bonus_nanos "
            "  <> cost_nanos) "
            "  FROM proxy_requestlog WHERE account_id = %s",
            [world.account_id],
        ).fetchone()
        # What the foreign keys would have refused (the generator skips them).
        (orphans,) = conn.execute(
            "SELECT count(*) FROM proxy_requestlog l "
            "LEFT JOIN apikeys_apikey k "
            "  ON k.id = l.api_key_id AND k.account_id = l.account_id "
            "WHERE k.id IS NULL"
        ).fetchone()
        logs = conn.execute(
            "SELECT count(*), sum(cost_nanos), sum(prompt_tokens), "
            "sum(completion_tokens), count(*) FILTER (WHERE status >= 400) "
            "FROM proxy_requestlog WHERE account_id = %s",
            [world.account_id],
        ).fetchone()
        rollups = conn.execute(
            "SELECT sum(requests), sum(cost_nanos), sum(prompt_tokens), "
            "sum(completion_tokens), sum(errors) "
            "FROM proxy_usagerollup WHERE account_id = %s",
            [world.account_id],
        ).fetchone()
    return [
        (
            "every log's key is its account's",
            orphans == 0,
            f"{orphans} logs of a key not their account's",
        ),
        (
            "each log's cost by kind and by pool sums to its cost",
            bad_parts == 0 and bad_pools == 0,
            f"{bad_parts} off by kind, {bad_pools} off by pool",
        ),
        (
            "rollups = logs (requests, cost, prompt and completion tokens, errors)",
            tuple(int(v) for v in rollups) == tuple(int(v) for v in logs),
            f"logs {tuple(int(v) for v in logs)}, rollups "
            f"{tuple(int(v) for v in rollups)}",
        ),
    ]


def world_make(*, logs: int, jobs: int, chunk: int) -> World:
    from django.core.management import call_command
    from django.db import connections

    database_recreate()
    call_command("migrate", interactive=False, verbosity=0)
    end = datetime.now(UTC)
    start = end - timedelta(days=DAYS)
    account_id, key_ids = populate(start=start)
    connections.close_all()
    print(f"generating {logs:,} request logs ({jobs} connections) ...", flush=True)
    began = time.perf_counter()
    generate(
        account_id=account_id,
        key_ids=key_ids,
        logs=logs,
        start=start,
        jobs=jobs,
        chunk=chunk,
    )
    rollups_and_analyze(account_id)
    print(f"  data ready in {time.perf_counter() - began:.0f} s", flush=True)
    world = world_find()
    assert world is not None
    return world


# --- measuring -----------------------------------------------------------------------


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def rss_kib(pids: list[int]) -> int:
    """The resident memory of these processes, summed (KiB)."""
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (uvicorn's workers, if it has some)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


class RssSampler:
    """The platform's resident memory every 50 ms while a block runs: its
    peak."""

    def __init__(self, pids: list[int]):
        self.pids = pids
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.peak = max(self.peak, rss_kib(self.pids))
            if self._stop.wait(0.05):
                return

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    place = share * (len(ordered) - 1)
    low = int(place)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (place - low)


@dataclass
class Figure:
    name: str
    unit: str  # "ms" or "rows/s"
    values: list[float] = field(default_factory=list)
    target: float | None = None  # p50 at most (ms) or at least (rows/s)
    note: str = ""

    @property
    def p50(self) -> float:
        return statistics.median(self.values)

    @property
    def p95(self) -> float:
        return percentile(self.values, 0.95)

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        if self.unit == "ms":
            return self.p50 <= self.target
        return self.p50 >= self.target


class Api:
    """The management API over one keep-alive connection."""

    def __init__(self, base_url: str, secret: str):
        import httpx

        self.client = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {secret}"},
            timeout=600,
        )

    def get(self, path: str, params: dict | None = None) -> tuple[float, dict]:
        """(milliseconds to the whole answer, its JSON)."""
        began = time.perf_counter()
        response = self.client.get(path, params=params)
        body = response.content
        elapsed = (time.perf_counter() - began) * 1000
        if response.status_code != 200:
            raise RuntimeError(
                f"GET {response.request.url} answered {response.status_code}: "
                f"{body[:500]!r}"
            )
        import json

        return elapsed, json.loads(body)

    def timed(self, path: str, params: dict | None, runs: int, warmup: int = 3):
        for _ in range(warmup):
            self.get(path, params)
        return [self.get(path, params)[0] for _ in range(runs)]

    def close(self) -> None:
        self.client.close()


def next_cursor(page: dict) -> str | None:
    """The cursor of the next page, from its ``next`` link (or a bare
    cursor)."""
    link = page.get("next")
    if not link:
        return None
    if "?" in link or link.startswith(("http:", "https:", "/")):
        values = parse_qs(urlsplit(link).query).get("cursor")
        return values[0] if values else None
    return link


def log_back(world: World, days: int) -> tuple[datetime, object]:
    """(created_at, id) of the newest log ``days`` before the newest."""
    with connect() as conn:
        return conn.execute(
            "SELECT created_at, id FROM proxy_requestlog "
            "WHERE account_id = %s AND created_at <= %s "
            "ORDER BY created_at DESC, id DESC LIMIT 1",
            [world.account_id, world.newest - timedelta(days=days)],
        ).fetchone()


def cursor_at(created_at: datetime, log_id) -> str:
    """A cursor reading the logs older than this one, as the list's own
    ``next`` links are made."""
    from proxy.selectors import _cursor_encode

    return _cursor_encode(created_at, log_id, older=True)


def usd_nanos(value: str) -> int:
    from decimal import Decimal

    return int(Decimal(value) * 1_000_000_000)


@dataclass
class Window:
    """The last 30 days (UTC dates, both inclusive) of the data."""

    first: str
    last: str
    since: datetime
    before: datetime

    @classmethod
    def of(cls, world: World, days: int = 30) -> Window:
        last = world.newest.astimezone(UTC).date()
        first = last - timedelta(days=days - 1)
        since = datetime(first.year, first.month, first.day, tzinfo=UTC)
        return cls(
            first.isoformat(),
            last.isoformat(),
            since,
            since + timedelta(days=days),
        )

    @property
    def params(self) -> dict:
        return {"from": self.first, "to": self.last}


def window_sums(world: World, window: Window) -> tuple[int, int]:
    """(logs, cost) of the window, from the logs."""
    with connect() as conn:
        logs, cost = conn.execute(
            "SELECT count(*), coalesce(sum(cost_nanos), 0) FROM proxy_requestlog "
            "WHERE account_id = %s AND created_at >= %s AND created_at < %s",
            [world.account_id, window.since, window.before],
        ).fetchone()
    return int(logs), int(cost)


def measure_analytics(api: Api, window: Window, runs: int, expected_cost: int):
    figures, checks = [], []
    for group_by in ("model", "key"):
        params = {**window.params, "granularity": "day", "group_by": group_by}
        figure = Figure(
            f"analytics 30 days by day, group_by={group_by}",
            "ms",
            api.timed("/api/v1/analytics/cost", params, runs),
            TARGET_ANALYTICS_MS,
        )
        _, report = api.get("/api/v1/analytics/cost", params)
        figure.note = f"{len(report['series'])} points"
        figures.append(figure)
        cost = usd_nanos(report["totals"]["cost"])
        checks.append(
            (
                f"analytics (group_by={group_by}) total = the logs' cost in the range",
                cost == expected_cost,
                f"API {cost:,} nanos, logs {expected_cost:,}",
            )
        )
    return figures, checks


def measure_pages(api: Api, world: World, runs: int, deep_pages: int):
    path = "/api/v1/requests"
    figures: list[Figure] = []
    checks = []
    key_id = world.key_ids[1]  # "chatbot", a fifth of the requests
    small_key = world.key_ids[-1]  # "ci", 2 in 100
    model = "anthropic/claude-haiku-4-5"  # 7 in 100
    rare_model = "openai/gpt-4.1"  # 2 in 100
    created_at, log_id = log_back(world, 30)
    back = cursor_at(created_at, log_id)

    for label, params in (
        ("", {}),
        (f", key={KEYS[1][0]}", {"key": key_id}),
        (f", key={KEYS[-1][0]}", {"key": small_key}),
        (f", model={model}", {"model": model}),
        (f", model={rare_model}", {"model": rare_model}),
    ):
        figures.append(
            Figure(
                f"logs first page{label}",
                "ms",
                api.timed(path, params, runs),
                TARGET_PAGE_MS,
            )
        )
        figures.append(
            Figure(
                f"logs page 30 days back{label}",
                "ms",
                api.timed(path, {**params, "cursor": back}, runs),
                TARGET_PAGE_MS,
            )
        )

    figures.append(
        Figure(
            "one log's detail, 30 days back",
            "ms",
            api.timed(f"{path}/{log_id}", None, runs),
        )
    )

    # Following next, page after page: each page's time along the way.
    walk = Figure(
        f"logs pages 1..{deep_pages} following next", "ms", [], TARGET_PAGE_MS
    )
    cursor = None
    seen = 0
    last_id = None
    ordered = True
    for _ in range(deep_pages):
        elapsed, page = api.get(path, {"cursor": cursor} if cursor else None)
        walk.values.append(elapsed)
        rows = page["results"]
        seen += len(rows)
        for row in rows:
            key = (row["created_at"], row["id"])
            if last_id is not None and key >= last_id:
                ordered = False
            last_id = key
        cursor = next_cursor(page)
        if cursor is None:
            break
    walk.note = f"{seen:,} rows deep"
    figures.append(walk)
    checks.append(
        (
            f"{seen:,} rows walked newest first, none repeated",
            ordered and seen > 0,
            "in order" if ordered else "out of order or repeated",
        )
    )
    if cursor is not None:
        figures.append(
            Figure(
                f"logs page {deep_pages + 1} again",
                "ms",
                api.timed(path, {"cursor": cursor}, runs),
                TARGET_PAGE_MS,
            )
        )
    return figures, checks


def measure_csv(api: Api, window: Window, runs: int, pids: list[int], expected: int):
    """The 30-day export, streamed: rows per second, and the platform's memory."""
    figure = Figure("CSV export, 30 days", "rows/s", [], TARGET_CSV_ROWS_PER_S)
    exports = []  # (rows, bytes, seconds)
    memory = []  # (before, peak, after) KiB
    for _ in range(runs):
        before = rss_kib(pids)
        began = time.perf_counter()
        lines = size = 0
        with (
            RssSampler(pids) as sampler,
            api.client.stream(
                "GET", "/api/v1/requests.csv", params=window.params
            ) as response,
        ):
            if response.status_code != 200:
                response.read()
                raise RuntimeError(
                    f"CSV answered {response.status_code}: {response.content[:500]!r}"
                )
            for chunk in response.iter_bytes():
                lines += chunk.count(b"\n")
                size += len(chunk)
        seconds = time.perf_counter() - began
        rows = lines - 1  # the header
        figure.values.append(rows / seconds)
        exports.append((rows, size, seconds))
        memory.append((before, sampler.peak, rss_kib(pids)))
    figure.note = "RSS MiB before/peak/after: " + ", ".join(
        f"{b / 1024:.0f}/{p / 1024:.0f}/{a / 1024:.0f}" for b, p, a in memory
    )
    growth = max(peak - before for before, peak, _ in memory)
    rows, size, seconds = exports[-1]
    return [figure], [
        (
            "every export's rows = the logs in the range",
            all(rows == expected for rows, _, _ in exports),
            f"{', '.join(f'{r:,}' for r, _, _ in exports)} rows "
            f"(the last {size / 1e6:,.0f} MB in {seconds:.1f} s); logs {expected:,}",
        ),
        (
            "the platform's memory stays flat while exporting (peak < +100 MiB)",
            growth < 100 * 1024,
            f"at most {growth / 1024:+.0f} MiB",
        ),
    ]


def management_key(world: World) -> tuple[int, str]:
    from accounts.models import Account
    from apikeys.models import KeyKind
    from apikeys.services import key_create

    account = Account.objects.get(pk=world.account_id)
    created = key_create(
        account=account,
        name=f"bench {datetime.now(UTC):%Y-%m-%d %H:%M:%S}",
        kind=KeyKind.MANAGEMENT,
    )
    return created.api_key.pk, created.secret


def management_key_delete(key_id: int) -> None:
    from apikeys.models import ApiKey
    from apikeys.services import key_delete

    key_delete(api_key=ApiKey.objects.get(pk=key_id))


def figure_line(figure: Figure) -> str:
    if figure.unit == "ms":
        values = f"{figure.p50:9.1f} {figure.p95:9.1f}"
        target = f"<= {figure.target:,.0f} ms" if figure.target else ""
    else:
        values = f"{figure.p50:9,.0f} {min(figure.values):9,.0f}"
        target = f">= {figure.target:,.0f}/s" if figure.target else ""
    met = {None: "", True: "met", False: "MISSED"}[figure.met]
    return (
        f"{figure.name:<52} {len(figure.values):>5} {values}  {target:<12} "
        f"{met:<6} {figure.note}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--logs", type=int, help="request logs (default 10,000,000)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the data the database holds (generate only if it holds none)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="500,000 logs, fewer runs: a smoke run"
    )
    parser.add_argument("--runs", type=int, help="requests per figure (default 30)")
    parser.add_argument(
        "--deep-pages", type=int, help="pages to follow next (default 2,000)"
    )
    parser.add_argument("--csv-runs", type=int, help="exports (default 3)")
    parser.add_argument(
        "--jobs", type=int, default=2, help="connections writing the logs"
    )
    parser.add_argument("--chunk", type=int, default=250_000, help="logs a statement")
    parser.add_argument(
        "--workers",
        type=int,
        default=max(1, (os.cpu_count() or 2) // 2),
        help="uvicorn workers (default: as scripts/run, one per two cores)",
    )
    args = parser.parse_args()
    logs = args.logs or (500_000 if args.quick else 10_000_000)
    runs = args.runs or (10 if args.quick else 30)
    deep_pages = args.deep_pages or (200 if args.quick else 2_000)
    csv_runs = args.csv_runs or (2 if args.quick else 3)

    import logging

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from tests.support.platform import PlatformProcess

    logging.getLogger("httpx").setLevel(logging.WARNING)

    print(f"load before: {loadavg()}  ({os.cpu_count()} cores)", flush=True)
    world = None
    if args.reuse and database_exists():
        call_command("migrate", interactive=False, verbosity=0)
        world = world_find()
        if world is not None:
            print(f"reusing {world.logs:,} request logs", flush=True)
    if world is None:
        world = world_make(logs=logs, jobs=args.jobs, chunk=args.chunk)
    checks = data_check(world)
    window = Window.of(world)
    in_window, window_cost = window_sums(world, window)
    print(
        f"{world.logs:,} logs from {world.oldest:%Y-%m-%d %H:%M} to "
        f"{world.newest:%Y-%m-%d %H:%M} UTC; the last 30 days "
        f"({window.first} .. {window.last}) hold {in_window:,}",
        flush=True,
    )
    key_id, secret = management_key(world)
    connections.close_all()

    platform = PlatformProcess(
        database_url=os.environ["DATABASE_URL"],
        workers=args.workers,
        env={"DEBUG": "0"},
    )
    figures: list[Figure] = []
    try:
        with platform:
            api = Api(platform.url, secret)
            pids = process_tree(platform.proc.pid)
            try:
                # What any request of the API costs: the figures below include it.
                figures.append(
                    Figure(
                        "baseline: GET /api/v1/balance",
                        "ms",
                        api.timed("/api/v1/balance", None, runs),
                    )
                )
                found, checked = measure_analytics(api, window, runs, window_cost)
                figures += found
                checks += checked
                print("analytics measured", flush=True)
                found, checked = measure_pages(api, world, runs, deep_pages)
                figures += found
                checks += checked
                print("log pages measured", flush=True)
                found, checked = measure_csv(api, window, csv_runs, pids, in_window)
                figures += found
                checks += checked
            finally:
                api.close()
            platform_output = platform.output()
    finally:
        management_key_delete(key_id)
        Path(platform.log.name).unlink(missing_ok=True)

    print(f"\nload after: {loadavg()}  (the machine may be shared: compare p50s)")
    print(
        f"{args.workers} uvicorn worker(s); one request at a time on one "
        f"keep-alive connection; {runs} runs a figure after 3 warm-up requests\n"
    )
    print(
        f"{'':<52} {'runs':>5} {'p50':>9} {'p95':>9}  target\n"
        f"{'':<52} {'':>5} {'(rows/s: p50, min)':>19}"
    )
    for figure in figures:
        print(figure_line(figure))
    print("\nchecks:")
    for name, ok, detail in checks:
        print(f"  [{'ok' if ok else 'FAIL'}] {name}: {detail}")
    met = all(figure.met is not False for figure in figures)
    whole = all(ok for _, ok, _ in checks)
    print(
        f"\nverdict: checks {'hold' if whole else 'FAIL'}; "
        f"targets {'all met' if met else 'not all met'}"
    )
    if "Traceback" in platform_output or "ERROR" in platform_output:
        print("\nthe platform logged errors; its output ends with:\n")
        print(platform_output[-3000:])
    if not whole:
        sys.exit(1)


if __name__ == "__main__":
    main()
