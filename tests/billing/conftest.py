"""Helpers for the ledger tests: fresh customers, grants in one line, counts of
every ledger table, threads with their own connections, and the whole-ledger
check that every test ends with."""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import pytest
from django.db import connection

from accounts.models import Account
from accounts.services import user_signup
from billing.ledger.grants import credit_grant
from billing.ledger.reconciliation import ledger_check
from billing.ledger.selectors import balance_get, breakdown_get
from billing.models import CreditLot, Hold, LedgerEntry, LotMovement, LotSource, Wallet
from tests.conftest import PASSWORD, new_key

USD = 1_000_000_000

_emails = itertools.count()


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Every example of the state machine signs a customer up: PBKDF2 would
    # spend most of the suite's time hashing passwords nobody types.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def new_account() -> Account:
    """A customer with an empty wallet and an email no other test uses."""
    user = user_signup(email=f"customer-{next(_emails)}@example.com", password=PASSWORD)
    return user.account


@pytest.fixture
def customer(db) -> Account:
    """A fresh customer account with nothing in it."""
    return new_account()


def grant(
    account: Account,
    amount_nanos: int,
    source: str = LotSource.GIFT,
    *,
    expires_at: datetime | None = None,
    pool: str | None = None,
) -> LedgerEntry:
    return credit_grant(
        account=account,
        source=source,
        amount_nanos=amount_nanos,
        reason=f"test {source}",
        actor=None,
        idempotency_key=new_key(str(source)),
        pool=pool,
        expires_at=expires_at,
    )


def lot_of(entry: LedgerEntry) -> CreditLot:
    return CreditLot.objects.get(entry=entry)


def remaining(lot: CreditLot) -> int:
    return CreditLot.objects.values_list("remaining_nanos", flat=True).get(pk=lot.pk)


def wallet_of(account: Account) -> tuple[int, int, int]:
    """(top-up, bonus, held) as the wallet row says now."""
    wallet = Wallet.objects.get(account=account)
    return wallet.topup_nanos, wallet.bonus_nanos, wallet.held_nanos


def movements_of(entry: LedgerEntry | int) -> dict[int, int]:
    """{lot id: delta} of an entry. A dict, not a list: the rows of one entry
    carry no order (the spending order shows in which lots were taken, and how
    much of each)."""
    entry_id = entry if isinstance(entry, int) else entry.pk
    return dict(
        LotMovement.objects.filter(entry_id=entry_id).values_list(
            "lot_id", "delta_nanos"
        )
    )


@dataclass(frozen=True)
class Counts:
    entries: int
    lots: int
    movements: int
    holds: int
    wallets: tuple


def counts() -> Counts:
    """Everything the ledger could have written, to prove that nothing was."""
    return Counts(
        entries=LedgerEntry.objects.count(),
        lots=CreditLot.objects.count(),
        movements=LotMovement.objects.count(),
        holds=Hold.objects.count(),
        wallets=tuple(
            Wallet.objects.order_by("account_id").values_list(
                "account_id", "topup_nanos", "bonus_nanos", "held_nanos"
            )
        ),
    )


def assert_ledger_whole(*accounts: Account) -> None:
    """Every invariant of the ledger holds: no drift anywhere, and for each
    given account the credits breakdown sums to the wallet's total, nothing is
    negative and held stays within the total."""
    assert ledger_check() == []
    for account in accounts:
        balance = balance_get(account=account)
        breakdown = breakdown_get(account=account)
        assert breakdown["total"] == balance.total_nanos
        assert (
            sum(v for k, v in breakdown.items() if k != "total") == breakdown["total"]
        )
        assert balance.topup_nanos >= 0
        assert balance.bonus_nanos >= 0
        assert 0 <= balance.held_nanos <= balance.total_nanos
    assert not CreditLot.objects.filter(remaining_nanos__lt=0).exists()


def run_concurrently(
    jobs: list[Callable[[], object]], *, workers: int = 25
) -> list[object]:
    """Run the jobs on ``workers`` threads, each with its own database
    connection, all starting together; return each job's result or the
    exception it raised, in the order of the jobs.

    Fewer threads than jobs: the test server allows 100 connections in all and
    other suites share it. Each thread still runs its jobs one after another on
    its own connection, so every job races the jobs of every other thread.
    """
    todo: queue.Queue[int] = queue.Queue()
    for index in range(len(jobs)):
        todo.put(index)
    results: list[object] = [None] * len(jobs)
    workers = min(workers, len(jobs))
    start = threading.Barrier(workers)

    def work() -> None:
        try:
            connection.ensure_connection()
            start.wait(timeout=30)
            while True:
                try:
                    index = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    results[index] = jobs[index]()
                except Exception as exc:  # the test looks at every outcome
                    results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker hung"
    return results
