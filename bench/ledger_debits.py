"""Sustained debits per second against ONE hot account, 16 concurrent workers.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/agipower_bench \
        .venv/bin/python bench/ledger_debits.py [--seconds 10] [--rounds 3]

Two ways of debiting, measured side by side in alternating rounds:

- ``single``: 16 processes, each with its own connection, each calling
  ``billing.ledger.services.balance_debit`` in a loop: one transaction per debit.
- ``group``: 2 processes (as 2 web workers) of 8 threads each, debiting through
  ``billing.ledger.group_commit.DebitGroupCommitter``: the debits waiting for the
  account's lock in a process share one transaction.

Every debit has its own idempotency key and journal entry. The account's credits
sit in several lots of both pools. After each round the ledger's invariants are
checked and the journal must hold exactly the debits that succeeded, to the nano.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault(
    "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/agipower_bench"
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agipower.settings")

DEBIT_NANOS = 1_234_567  # $0.001234567, a typical chat completion


def _prepare_database() -> None:
    import psycopg

    url = os.environ["DATABASE_URL"]
    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


MODES = {"single": (16, 1), "group": (2, 8)}  # processes, threads per process


def _worker(
    mode: str, account_id: int, seconds: float, start_at: float, queue: mp.Queue
) -> None:
    import threading

    import django

    django.setup()
    from django.db import connection

    from accounts.models import Account
    from billing.errors import InsufficientCredits
    from billing.ledger.group_commit import DebitGroupCommitter
    from billing.ledger.services import DebitRequest, balance_debit

    account = Account.objects.get(pk=account_id)
    committer = DebitGroupCommitter()
    _, threads = MODES[mode]
    results = []

    def loop(tag: str) -> None:
        latencies = []
        refused = 0
        n = 0
        while time.time() < start_at:
            time.sleep(0.001)
        deadline = start_at + seconds
        while time.time() < deadline:
            began = time.perf_counter()
            key = f"bench:{tag}:{n}"
            try:
                if mode == "group":
                    committer.debit(
                        account=account,
                        request=DebitRequest(DEBIT_NANOS, key, "bench"),
                    )
                else:
                    balance_debit(
                        account=account,
                        amount_nanos=DEBIT_NANOS,
                        idempotency_key=key,
                        description="bench",
                    )
            except InsufficientCredits:
                refused += 1
            latencies.append(time.perf_counter() - began)
            n += 1
        connection.close()
        results.append((len(latencies) - refused, refused, latencies))

    pool = [
        threading.Thread(target=loop, args=(f"{mode}:{os.getpid()}:{t}:{start_at}",))
        for t in range(threads)
    ]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    queue.put(
        (
            sum(r[0] for r in results),
            sum(r[1] for r in results),
            [latency for r in results for latency in r[2]],
        )
    )


def _round(mode: str, account_id: int, seconds: float) -> dict:
    from django.db import connections

    from billing.ledger.reconciliation import ledger_check
    from billing.models import LedgerEntry, Wallet

    connections.close_all()
    before = Wallet.objects.get(account_id=account_id)
    entries_before = LedgerEntry.objects.filter(account_id=account_id).count()
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
    refused = sum(r[1] for r in results)
    latencies = sorted(latency for r in results for latency in r[2])

    after = Wallet.objects.get(account_id=account_id)
    entries = LedgerEntry.objects.filter(account_id=account_id).count() - entries_before
    spent = before.total_nanos - after.total_nanos
    drift = ledger_check(account_ids=[account_id])
    whole = not drift and entries == ok and spent == ok * DEBIT_NANOS and refused == 0
    return {
        "debits_per_s": ok / seconds,
        "ok": ok,
        "refused": refused,
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
    from billing.ledger.services import credit_grant, topup_credit
    from billing.models import LotSource

    account = user_signup(email="hot@bench.local", password=None).account
    # Several lots in both pools: debits cross lots as in real life.
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
                f"round {i} {mode:>6}: {result['debits_per_s']:,.0f} debits/s "
                f"({result['ok']} ok, {result['refused']} refused), "
                f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, "
                f"ledger whole: {result['ledger_whole']}",
                flush=True,
            )
            for drift in result["drift"]:
                print("  drift:", drift)
    whole = all(r["ledger_whole"] for results in rounds.values() for r in results)
    medians = {
        mode: statistics.median(r["debits_per_s"] for r in results)
        for mode, results in rounds.items()
    }
    for mode, (processes, threads) in MODES.items():
        p50 = statistics.median(r["p50_ms"] for r in rounds[mode])
        print(
            f"median {mode:>6} ({processes} processes x {threads} threads, one hot "
            f"account): {medians[mode]:,.0f} debits/s, p50 {p50:.2f} ms"
        )
    print(
        f"group / single: {medians['group'] / medians['single']:.2f}x; "
        f"every invariant held: {whole}"
    )
    if not whole:
        sys.exit(1)


if __name__ == "__main__":
    main()
