"""Sustained charges per second against ONE hot account, 16 concurrent workers,
through the settle path production runs.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/agipower_bench_ledger \
        .venv/bin/python bench/ledger_debits.py [--seconds 10] [--rounds 3]

Every request is charged by ``billing_batch`` (``billing/sql/ledger_v1.sql``,
the function the proxy's ``proxy_batch`` settles through), called by
``billing.ledger.holds.batch_settle``. Two ways, measured side by side in
alternating rounds:

- ``single``: 16 processes, each with its own connection, each settling one
  request per call in a loop: one transaction per request.
- ``group``: 2 processes (as 2 web workers) of 8 tasks each, settling through
  the proxy's group commit (``proxy.batching.AccountBatcher``): the requests
  waiting for the account's lock in a process share one transaction and one
  usage journal entry.

The account's credits sit in several lots of both pools, so charges cross lots.
After each round the ledger's invariants are checked, and the journal's usage
entries must hold exactly what the requests were charged, to the nano, with
every request charged in full.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault(
    "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/agipower_bench_ledger"
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agipower.settings")

COST_NANOS = 1_234_567  # $0.001234567, a typical chat completion


def _prepare_database() -> None:
    import psycopg

    url = os.environ["DATABASE_URL"]
    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


MODES = {"single": (16, 1), "group": (2, 8)}  # processes, workers per process


def _settle(account, costs: list[int]) -> list[int]:
    """One batch of requests, each charged its cost: what each was charged."""
    from billing.ledger.holds import BatchItem, batch_settle

    batch = batch_settle(
        account=account,
        items=[BatchItem(cost, on_lease=True) for cost in costs],
        idempotency_key=f"usage:{uuid.uuid4().hex}",
        description=f"bench: {len(costs)} requests",
    )
    return [item.charged_nanos for item in batch.items]


def _worker(
    mode: str, account_id: int, seconds: float, start_at: float, queue: mp.Queue
) -> None:
    import django

    django.setup()
    from django.db import connections

    from accounts.models import Account
    from proxy.batching import AccountBatcher

    account = Account.objects.get(pk=account_id)
    _, workers = MODES[mode]

    def wait_for_start() -> float:
        time.sleep(max(start_at - time.time(), 0))
        return start_at + seconds

    def single() -> list[tuple[int, int, list[float]]]:
        latencies = []
        short = 0
        deadline = wait_for_start()
        while time.time() < deadline:
            began = time.perf_counter()
            (charged,) = _settle(account, [COST_NANOS])
            short += charged != COST_NANOS
            latencies.append(time.perf_counter() - began)
        return [(len(latencies) - short, short, latencies)]

    async def group() -> list[tuple[int, int, list[float]]]:
        # One batch of the account at a time, in a thread of its own (the ORM
        # is synchronous): what is queued meanwhile goes in the next batch.
        batcher = AccountBatcher(
            lambda _, costs: asyncio.to_thread(_settle, account, costs)
        )

        async def loop() -> tuple[int, int, list[float]]:
            latencies = []
            short = 0
            await asyncio.sleep(max(start_at - time.time(), 0))
            deadline = start_at + seconds
            while time.time() < deadline:
                began = time.perf_counter()
                short += await batcher.submit(account_id, COST_NANOS) != COST_NANOS
                latencies.append(time.perf_counter() - began)
            return len(latencies) - short, short, latencies

        return await asyncio.gather(*(loop() for _ in range(workers)))

    if mode == "group":
        connections.close_all()  # each thread opens its own
        results = asyncio.run(group())
    else:
        results = single()
    connections.close_all()
    queue.put(
        (
            sum(r[0] for r in results),
            sum(r[1] for r in results),
            [latency for r in results for latency in r[2]],
        )
    )


def _round(mode: str, account_id: int, seconds: float) -> dict:
    from django.db import connections
    from django.db.models import Sum

    from billing.ledger.reconciliation import ledger_check
    from billing.models import EntryKind, LedgerEntry, Wallet

    def usage() -> tuple[int, int]:
        entries = LedgerEntry.objects.filter(
            account_id=account_id, kind=EntryKind.USAGE
        )
        total = entries.aggregate(total=Sum("amount_nanos"))["total"] or 0
        return entries.count(), -total

    connections.close_all()
    before = Wallet.objects.get(account_id=account_id)
    entries_before, usage_before = usage()
    connections.close_all()
    queue: mp.Queue = mp.Queue()
    start_at = time.time() + 1.5
    processes, _ = MODES[mode]
    procs = [
        mp.Process(target=_worker, args=(mode, account_id, seconds, start_at, queue))
        for _ in range(processes)
    ]
    for proc in procs:
        proc.start()
    results = [queue.get() for _ in procs]
    for proc in procs:
        proc.join()
    ok = sum(r[0] for r in results)
    short = sum(r[1] for r in results)
    latencies = sorted(latency for r in results for latency in r[2])

    after = Wallet.objects.get(account_id=account_id)
    entries_after, usage_after = usage()
    entries = entries_after - entries_before
    charged = usage_after - usage_before
    spent = before.total_nanos - after.total_nanos
    drift = ledger_check(account_ids=[account_id])
    whole = (
        not drift
        and short == 0
        and spent == charged == ok * COST_NANOS
        and after.held_nanos == 0
    )
    return {
        "charges_per_s": ok / seconds,
        "ok": ok,
        "short": short,
        "entries": entries,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
        "ledger_whole": whole,
        "drift": drift,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    _prepare_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    from accounts.services import user_signup
    from billing.ledger.grants import credit_grant, topup_credit
    from billing.models import LotSource

    account = user_signup(email="hot@bench.local", password=None).account
    # Several lots in both pools: charges cross lots as in real life.
    for i in range(3):
        topup_credit(
            account=account,
            amount_nanos=10_000 * 10**9,
            idempotency_key=f"topup-{i}",
            reference=f"bench-{i}",
        )
    credit_grant(
        account=account,
        source=LotSource.GIFT,
        amount_nanos=5 * 10**9,
        reason="bench",
        actor=None,
        idempotency_key="gift",
    )

    rounds: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for i in range(1, args.rounds + 1):
        for mode in MODES:  # alternate, so that both see the same machine
            result = _round(mode, account.pk, args.seconds)
            rounds[mode].append(result)
            print(
                f"round {i} {mode:>6}: {result['charges_per_s']:,.0f} charges/s "
                f"({result['ok']} charged in {result['entries']} usage entries, "
                f"{result['short']} short), p50 {result['p50_ms']:.2f} ms, "
                f"p99 {result['p99_ms']:.2f} ms, "
                f"ledger whole: {result['ledger_whole']}",
                flush=True,
            )
            for drift in result["drift"]:
                print("  drift:", drift)
    whole = all(r["ledger_whole"] for results in rounds.values() for r in results)
    medians = {
        mode: statistics.median(r["charges_per_s"] for r in results)
        for mode, results in rounds.items()
    }
    for mode, (processes, workers) in MODES.items():
        p50 = statistics.median(r["p50_ms"] for r in rounds[mode])
        print(
            f"median {mode:>6} ({processes} processes x {workers} workers, one hot "
            f"account): {medians[mode]:,.0f} charges/s, p50 {p50:.2f} ms"
        )
    print(
        f"group / single: {medians['group'] / medians['single']:.2f}x; "
        f"every invariant held: {whole}"
    )
    if not whole:
        sys.exit(1)


if __name__ == "__main__":
    main()
