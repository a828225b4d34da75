"""Throughput and latency of the ``/v1`` proxy, billing on, against ONE hot account.

    .venv/bin/python bench/proxy.py [--seconds 8] [--warmup 2] [--quick]
        [--py-spy DIR]

(``DATABASE_URL`` overrides the database, by default
``postgres://postgres@127.0.0.1:5432/agipower_bench_proxy``: it is dropped and
created anew.)

A fake OpenAI upstream (``tests.upstream``, 16 completion tokens) and the
platform (uvicorn, 2 workers, ``agipower.asgi``) run as subprocesses. ``wrk``
(``bench/wrk/chat.lua``) POSTs chat completions, JSON and SSE (stream with
``stream_options.include_usage``), at concurrency 1, 16 and 64, alternately
straight to the upstream ("direct") and through the platform ("platform"), so
that both see the same machine. Per cell: requests/s, p50 and p99 latency,
errors (non-2xx and socket errors), and for the platform cells the CPU the
platform's process tree (uvicorn master and workers) and the database's
backends spent per request, plus how busy the machine was and how much of that
was someone else's work.

Afterwards the ledger must be whole: ``ledger_check()`` finds nothing, nothing
is held, every response wrk received complete has a request log with status 200
(a few more logs than wrk counted are requests cut off when wrk stopped), and
the balance spent equals both the sum of the logs' costs and the sum of the
usage entries, to the nano. Exits 1 if an invariant fails (not on a missed
target).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault(
    "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/agipower_bench_proxy"
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agipower.settings")

WRK = "/usr/bin/wrk"
LUA = REPO_ROOT / "bench" / "wrk" / "chat.lua"
UPSTREAM_KEY = "sk-upstream-bench"
MODEL_ID = "bench/gpt"
UPSTREAM_MODEL = "gpt-upstream"
COMPLETION_TOKENS = 16
CONCURRENCIES = (1, 16, 64)
MODES = ("json", "sse")
TARGETS = {"json": 1_500, "sse": 1_200}  # req/s through the platform at c16
ADDED_P50_MS = 1.5  # at c1
# USD per 1M tokens, as in tests/support/proxy.py
PRICES = {
    "input": "1.25",
    "cached_input": "0.125",
    "cache_write": "1.5",
    "output": "10",
}
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- the machine ---------------------------------------------------------------


def _ppid_map() -> dict[int, int]:
    parents = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for child, parent in _ppid_map().items():
        children.setdefault(parent, []).append(child)
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def cpu_ticks(pids: list[int]) -> dict[int, int]:
    """utime + stime of each live pid, in clock ticks."""
    ticks = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks[pid] = int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat
    return ticks


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # without guest times, already in user
    return total - idle, total


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class WaitSampler:
    """Samples what the database's backends of the bench database are doing
    (``pg_stat_activity``) every 50 ms while a cell runs: the share of active
    backends waiting on a lock (the hot wallet row), on a WAL flush, or on CPU."""

    def __init__(self, dbname: str, enabled: bool = True):
        import threading

        self.dbname = dbname
        self.enabled = enabled
        self.counts: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            while not self._stop.wait(0.05):
                rows = conn.execute(
                    "SELECT coalesce(wait_event_type, 'CPU') FROM pg_stat_activity "
                    "WHERE datname = %s AND state = 'active' "
                    "AND pid <> pg_backend_pid()",
                    [self.dbname],
                ).fetchall()
                for (kind,) in rows:
                    self.counts[kind] = self.counts.get(kind, 0) + 1

    def __enter__(self) -> WaitSampler:
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self._stop.set()
            self._thread.join()

    def shares(self) -> dict[str, float]:
        total = sum(self.counts.values()) or 1
        return {kind: n / total for kind, n in self.counts.items()}


def usage_entries(dbname: str) -> int:
    import psycopg

    base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/{dbname}", autocommit=True) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM billing_ledgerentry WHERE kind = 'usage'"
        ).fetchone()
    return count


def database_backends(dbname: str) -> list[int]:
    import psycopg

    base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", [dbname]
        ).fetchall()
    return [pid for (pid,) in rows]


# --- wrk -------------------------------------------------------------------------


@dataclass
class Cell:
    mode: str
    concurrency: int
    target: str  # "direct" or "platform"
    requests: int = 0
    seconds: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    non2xx: int = 0
    socket_errors: dict = field(default_factory=dict)
    platform_cpu_ms: float | None = None  # per request
    database_cpu_ms: float | None = None  # per request
    busy_cores: float = 0.0
    other_cores: float = 0.0
    per_settle: float | None = None  # requests per settle batch (usage entry)
    waits: dict = field(default_factory=dict)  # share of active backend samples

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.non2xx + sum(self.socket_errors.values())

    @property
    def ok(self) -> int:
        return self.requests - self.non2xx


_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"
)


def wrk_run(url: str, token: str, model: str, mode: str, concurrency: int, seconds):
    env = {
        **os.environ,
        "BENCH_TOKEN": token,
        "BENCH_MODEL": model,
        "BENCH_STREAM": "1" if mode == "sse" else "0",
    }
    threads = min(2, concurrency)
    command = [WRK, f"-t{threads}", f"-c{concurrency}", f"-d{seconds}s", "--latency"]
    command += ["--timeout", "10s", "-s", str(LUA), url]
    done = subprocess.run(  # noqa: S603 - fixed argv
        command, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0 or "BENCH {" not in done.stdout:
        raise RuntimeError(
            f"wrk failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )
    figures = json.loads(done.stdout.split("BENCH ", 1)[1].splitlines()[0])
    non2xx = _NON2XX.search(done.stdout)
    socket = _SOCKET.search(done.stdout)
    return figures, {
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket": dict(
            zip(
                ("connect", "read", "write", "timeout"),
                (int(v) for v in socket.groups()) if socket else (0, 0, 0, 0),
                strict=True,
            )
        ),
        "text": done.stdout,
    }


class Bench:
    def __init__(self, *, upstream, platform, secret: str, dbname: str, spy_dir):
        self.upstream = upstream
        self.platform = platform
        self.secret = secret
        self.dbname = dbname
        self.spy_dir = spy_dir
        self.platform_ok = 0  # 2xx answers wrk received from the platform, all runs
        self.platform_non2xx = 0

    def target(self, target: str) -> tuple[str, str, str]:
        if target == "direct":
            return self.upstream.base_url, UPSTREAM_KEY, UPSTREAM_MODEL
        return self.platform.base_url, self.secret, MODEL_ID

    def measure(self, mode: str, concurrency: int, target: str, seconds) -> Cell:
        base_url, token, model = self.target(target)
        platform_tree = process_tree(self.platform.proc.pid)
        backends = database_backends(self.dbname)
        upstream_tree = process_tree(self.upstream.proc.pid)
        before = cpu_ticks(platform_tree), cpu_ticks(backends), cpu_ticks(upstream_tree)
        machine_before = machine_ticks()
        wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        spy = self.spy_start(mode, concurrency, target, seconds)
        entries_before = usage_entries(self.dbname) if target == "platform" else 0

        with WaitSampler(self.dbname, target == "platform") as sampler:
            figures, parsed = wrk_run(
                f"{base_url}/chat/completions", token, model, mode, concurrency, seconds
            )

        machine_after = machine_ticks()
        if spy is not None:
            spy.wait()
        wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        backends = sorted(set(backends) | set(database_backends(self.dbname)))
        after = cpu_ticks(platform_tree), cpu_ticks(backends), cpu_ticks(upstream_tree)

        def spent(index: int) -> int:  # ticks; a pid born meanwhile counts from 0
            return sum(
                ticks - before[index].get(pid, 0) for pid, ticks in after[index].items()
            )

        platform_ticks, database_ticks, upstream_ticks = spent(0), spent(1), spent(2)
        wrk_seconds = (wrk_after.ru_utime + wrk_after.ru_stime) - (
            wrk_before.ru_utime + wrk_before.ru_stime
        )
        busy = machine_after[0] - machine_before[0]
        wall = (machine_after[1] - machine_before[1]) / (os.cpu_count() or 1)
        ours_ticks = platform_ticks + database_ticks + upstream_ticks
        ours_ticks += wrk_seconds * CLK_TCK

        cell = Cell(mode, concurrency, target)
        cell.requests = figures["requests"]
        cell.seconds = figures["duration_us"] / 1e6
        cell.p50_ms = figures["p50_us"] / 1000
        cell.p99_ms = figures["p99_us"] / 1000
        cell.non2xx = parsed["non2xx"]
        cell.socket_errors = parsed["socket"]
        cell.busy_cores = busy / wall if wall else 0.0
        cell.other_cores = max(busy - ours_ticks, 0) / wall if wall else 0.0
        if target == "platform":
            per_request = 1000 / CLK_TCK / max(cell.requests, 1)
            cell.platform_cpu_ms = platform_ticks * per_request
            cell.database_cpu_ms = database_ticks * per_request
            self.platform_ok += cell.ok
            self.platform_non2xx += cell.non2xx
            batches = usage_entries(self.dbname) - entries_before
            cell.per_settle = cell.requests / batches if batches else None
            cell.waits = sampler.shares()
        return cell

    def spy_start(self, mode, concurrency, target, seconds):
        """With --py-spy: sample the platform's workers during the c16 cells."""
        if self.spy_dir is None or target != "platform" or concurrency != 16:
            return None
        out = Path(self.spy_dir) / f"platform-{mode}-c{concurrency}.txt"
        spy = Path(sys.executable).parent / "py-spy"
        return subprocess.Popen(  # noqa: S603 - fixed argv
            [str(spy), "record", "--pid", str(self.platform.proc.pid)]
            + ["--subprocesses", "--rate", "100", "--format", "raw"]
            + ["--duration", str(max(int(seconds) - 1, 1)), "--output", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


# --- set-up and checks -------------------------------------------------------------


def prepare_database() -> str:
    import psycopg

    base, name = os.environ["DATABASE_URL"].rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def populate(upstream_base_url: str):
    from accounts.services import user_signup
    from apikeys.services import key_create
    from billing.ledger.grants import credit_grant, topup_credit
    from billing.models import LotSource
    from money import usd_to_nanos
    from proxy.models import CatalogModel, ModelPrice, Provider

    account = user_signup(email="hot@bench.local", password=None).account
    topup_credit(
        account=account,
        amount_nanos=usd_to_nanos("1000000"),
        idempotency_key="bench-topup",
        reference="bench",
    )
    credit_grant(
        account=account,
        source=LotSource.GIFT,
        amount_nanos=usd_to_nanos("1000"),
        reason="bench",
        actor=None,
        idempotency_key="bench-gift",
    )
    key = key_create(account=account, name="bench")
    provider = Provider.objects.create(
        name="bench-upstream",
        base_url=upstream_base_url,
        api_key_env="BENCH_UPSTREAM_KEY",
        read_timeout_seconds=30,
    )
    model = CatalogModel.objects.create(
        id=MODEL_ID,
        provider=provider,
        upstream=UPSTREAM_MODEL,
        context_length=200_000,
        max_output_tokens=8_192,
    )
    ModelPrice.objects.create(
        model=model,
        input_nanos=usd_to_nanos(PRICES["input"]),
        cached_input_nanos=usd_to_nanos(PRICES["cached_input"]),
        cache_write_nanos=usd_to_nanos(PRICES["cache_write"]),
        output_nanos=usd_to_nanos(PRICES["output"]),
    )
    return account, key.secret


def balance(account_id: int) -> tuple[int, int]:
    """(topup + bonus, held) of the account."""
    from billing.models import Wallet

    wallet = Wallet.objects.get(account_id=account_id)
    return wallet.topup_nanos + wallet.bonus_nanos, wallet.held_nanos


def invariants(account_id: int, start_total: int, bench: Bench, cut_allowance: int):
    """What must hold after the run: a list of (name, ok, detail)."""
    from django.db import connections
    from django.db.models import Count, Sum

    from billing.ledger.reconciliation import ledger_check
    from billing.models import EntryKind, Hold, HoldState, LedgerEntry
    from proxy.models import RequestLog

    connections.close_all()
    deadline = time.monotonic() + 10
    while True:  # in-flight settles of requests wrk cut off
        total, held = balance(account_id)
        active = Hold.objects.filter(
            account_id=account_id, state=HoldState.ACTIVE
        ).count()
        if (held == 0 and active == 0) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    checks = []
    drift = ledger_check()
    checks.append(("ledger_check() finds no drift", not drift, str(drift or "[]")))
    checks.append(
        ("nothing held", held == 0 and active == 0, f"held {held}, active {active}")
    )

    logs = RequestLog.objects.filter(account_id=account_id)
    by_status = dict(
        logs.values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    logged_ok = by_status.get(200, 0)
    difference = logged_ok - bench.platform_ok
    checks.append(
        (
            "logs with status 200 = requests wrk got complete (+ cut at the end)",
            0 <= difference <= cut_allowance,
            f"{logged_ok} logs, wrk {bench.platform_ok}, difference {difference:+d} "
            f"(at most {cut_allowance} may be cut); logs by status {by_status}",
        )
    )
    estimated = logs.filter(status=200, usage_estimated=True).count()
    costs = set(logs.filter(status=200).values_list("cost_nanos", flat=True))
    checks.append(
        (
            "every 200 is billed from upstream's usage at one and the same cost",
            estimated == 0 and len(costs) == 1,
            f"{estimated} estimated, costs {sorted(costs)[:5]}",
        )
    )
    spent = start_total - total
    logged_cost = logs.aggregate(s=Sum("cost_nanos"))["s"] or 0
    checks.append(
        (
            "balance spent = sum of the logs' cost_nanos",
            spent == logged_cost,
            f"spent {spent}, logs {logged_cost}",
        )
    )
    usage = LedgerEntry.objects.filter(account_id=account_id, kind=EntryKind.USAGE)
    usage_sum = -(usage.aggregate(s=Sum("amount_nanos"))["s"] or 0)
    checks.append(
        (
            "balance decrease = sum of the usage entries",
            spent == usage_sum,
            f"spent {spent}, usage entries {usage_sum} ({usage.count()} entries)",
        )
    )
    from proxy.reconciliation import rollups_check
    from proxy.rollups import usage_fold

    unfolded = usage_fold()
    drifts, _ = rollups_check()
    checks.append(
        (
            "the hourly and daily rollups equal the logs (after the last fold)",
            not drifts,
            f"{len(drifts)} drifts; the last fold added {unfolded} deltas",
        )
    )
    return checks


class Folder:
    """The beat task that folds the settlements' usage deltas into the hourly
    rollups (``proxy.tasks.usage_fold``), every ``USAGE_FOLD_SECONDS`` as in
    production, on a database backend of its own: its work is the database's
    work per request too."""

    def __init__(self, database_url: str, every: float):
        self.database_url, self.every = database_url, every
        self.stop = threading.Event()
        self.folded = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as conn:
            while not self.stop.wait(self.every):
                while True:
                    (moved,) = conn.execute("SELECT proxy_usage_fold(5000)").fetchone()
                    self.folded += moved
                    if moved < 5000:
                        break

    def __enter__(self) -> Folder:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


# --- report ------------------------------------------------------------------------


def cell_line(cell: Cell) -> str:
    errors = f"{cell.errors}"
    if cell.errors:
        socket = ",".join(f"{k} {v}" for k, v in cell.socket_errors.items() if v)
        errors += f" ({cell.non2xx} non-2xx{', ' + socket if socket else ''})"
    cpu = (
        f"{cell.platform_cpu_ms:6.3f}  {cell.database_cpu_ms:6.3f}"
        if cell.platform_cpu_ms is not None
        else f"{'-':>6}  {'-':>6}"
    )
    database = ""
    if cell.target == "platform":
        batch = f"{cell.per_settle:5.1f}" if cell.per_settle else f"{'-':>5}"
        shares = {k: 100 * cell.waits.get(k, 0) for k in ("Lock", "IO", "CPU")}
        database = (
            f"  {batch}  {shares['Lock']:3.0f}% {shares['IO']:3.0f}% "
            f"{shares['CPU']:3.0f}%"
        )
    return (
        f"{cell.mode:<4} {cell.concurrency:>3} {cell.target:<8} {cell.rps:>8,.0f} "
        f"{cell.p50_ms:>7.2f} {cell.p99_ms:>7.2f}  {errors:<8} {cpu}   "
        f"{cell.busy_cores:4.2f}  {cell.other_cores:4.2f}{database}"
    )


HEADER = (
    "mode   c target       req/s  p50 ms  p99 ms  errors   plat   db      busy  other"
    "   per   db backends: lock\n"
    "                                                      CPU ms/request  cores cores"
    "  batch  wait  IO   CPU"
)
LEGEND = """\
plat/db CPU: utime+stime of the platform's process tree (uvicorn master and
  workers) and of the database backends of the bench database, per request.
busy: cores the whole machine kept busy; other: what of it was neither the
  platform, the upstream, wrk nor our database backends (other people's work).
per batch: requests per settle batch (one usage entry each).
db backends: of the active backends sampled every 50 ms, the share waiting on
  a lock (the account's wallet row), on IO (WAL flush), or running (CPU)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8, help="per cell")
    parser.add_argument("--warmup", type=float, default=2, help="c16, per mode")
    parser.add_argument("--quick", action="store_true", help="3 s cells, 1 s warm-up")
    parser.add_argument(
        "--workers",
        type=int,
        default=max(1, (os.cpu_count() or 2) // 2),
        help="uvicorn workers (default: as scripts/run, one per two cores)",
    )
    parser.add_argument(
        "--py-spy",
        metavar="DIR",
        help="record the platform (py-spy raw stacks) during its c16 cells; "
        "the sampler's CPU then skews those cells",
    )
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.warmup = 3, 1
    seconds = max(int(round(args.seconds)), 1)
    warmup = max(int(round(args.warmup)), 1)
    if args.py_spy:
        Path(args.py_spy).mkdir(parents=True, exist_ok=True)

    dbname = prepare_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from tests.support.platform import PlatformProcess
    from tests.upstream.process import UpstreamProcess

    call_command("migrate", interactive=False, verbosity=0)
    print(f"load before: {loadavg()}  ({os.cpu_count()} cores)", flush=True)

    with UpstreamProcess(
        completion_tokens=COMPLETION_TOKENS, api_key=UPSTREAM_KEY
    ) as upstream:
        account, secret = populate(upstream.base_url)
        start_total, _ = balance(account.pk)
        connections.close_all()
        platform = PlatformProcess(
            database_url=os.environ["DATABASE_URL"],
            workers=args.workers,
            env={
                "BENCH_UPSTREAM_KEY": UPSTREAM_KEY,
                "PROXY_KEY_CACHE_SECONDS": "3",
                "PROXY_CATALOG_CACHE_SECONDS": "10",
                "PROXY_DB_POOL_MIN": "2",
                "PROXY_DB_POOL_MAX": "16",
                "DEBUG": "0",
            },
        )
        from django.conf import settings

        folder = Folder(os.environ["DATABASE_URL"], settings.USAGE_FOLD_SECONDS)
        with platform, folder:
            bench = Bench(
                upstream=upstream,
                platform=platform,
                secret=secret,
                dbname=dbname,
                spy_dir=args.py_spy,
            )
            cut_allowance = 0
            for mode in MODES:
                for target in ("direct", "platform"):
                    bench.measure(mode, 16, target, warmup)
                    cut_allowance += 16
            time.sleep(1)
            cells: list[Cell] = []
            print(f"\n{HEADER}", flush=True)
            flip = False
            for mode in MODES:
                for concurrency in CONCURRENCIES:
                    targets = ("platform", "direct") if flip else ("direct", "platform")
                    flip = not flip
                    for target in targets:
                        cell = bench.measure(mode, concurrency, target, seconds)
                        cells.append(cell)
                        if target == "platform":
                            cut_allowance += concurrency
                        print(cell_line(cell), flush=True)
                        time.sleep(0.5)
            load_after = loadavg()
            checks = invariants(account.pk, start_total, bench, cut_allowance)
            platform_output = platform.output()
        Path(platform.log.name).unlink(missing_ok=True)

    def get(mode, concurrency, target) -> Cell:
        return next(
            c
            for c in cells
            if (c.mode, c.concurrency, c.target) == (mode, concurrency, target)
        )

    print(f"\n{LEGEND}")
    print(f"\nload after: {load_after}")
    print(
        f"cells of {seconds} s after a {warmup} s warm-up at c16; {args.workers} "
        "uvicorn workers, "
        f"one hot account, upstream answers {COMPLETION_TOKENS} tokens at once\n"
    )
    verdict = []
    for mode in MODES:
        platform16 = get(mode, 16, "platform")
        direct16 = get(mode, 16, "direct")
        verdict.append(
            (
                f"{mode.upper()} c16 through the platform >= {TARGETS[mode]:,} req/s",
                platform16.rps >= TARGETS[mode],
                f"{platform16.rps:,.0f} req/s (direct {direct16.rps:,.0f})",
            )
        )
    for mode in MODES:
        platform1, direct1 = get(mode, 1, "platform"), get(mode, 1, "direct")
        added = platform1.p50_ms - direct1.p50_ms
        verdict.append(
            (
                f"{mode.upper()} added p50 at c1 <= {ADDED_P50_MS} ms",
                added <= ADDED_P50_MS,
                f"{added:+.2f} ms ({platform1.p50_ms:.2f} - {direct1.p50_ms:.2f})",
            )
        )
    for mode in MODES:
        cell = get(mode, 64, "platform")
        verdict.append(
            (
                f"{mode.upper()} no errors at c64 through the platform",
                cell.errors == 0,
                f"{cell.errors} errors ({cell.non2xx} non-2xx, {cell.socket_errors})",
            )
        )
    all_errors = sum(c.errors for c in cells if c.target == "platform")
    print(f"errors through the platform in all cells: {all_errors}")
    print("\ninvariants:")
    for name, ok, detail in checks:
        print(f"  [{'ok' if ok else 'FAIL'}] {name}: {detail}")
    print("\ntargets:")
    for name, ok, detail in verdict:
        print(f"  [{'met' if ok else 'MISSED'}] {name}: {detail}")
    whole = all(ok for _, ok, _ in checks)
    met = all(ok for _, ok, _ in verdict)
    print(
        f"\nverdict: invariants {'hold' if whole else 'FAIL'}; "
        f"targets {'all met' if met else 'not all met'}"
    )
    if "Traceback" in platform_output or "ERROR" in platform_output:
        print("\nthe platform logged errors; its output ends with:\n")
        print(platform_output[-3000:])
    if not whole:
        sys.exit(1)


if __name__ == "__main__":
    main()
