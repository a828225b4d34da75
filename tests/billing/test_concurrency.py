"""Concurrent requests can never together spend more than the balance, and no
balance or lot goes below zero. Threads, each with its own connection."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.errors import InsufficientCredits
from billing.ledger.debits import balance_debit
from billing.ledger.holds import (
    BatchItem,
    batch_settle,
    hold_place,
    hold_release,
    hold_settle,
)
from billing.ledger.reconciliation import ledger_check
from billing.models import (
    CreditLot,
    EntryKind,
    Hold,
    HoldState,
    LedgerEntry,
    LotSource,
    Pool,
)
from tests.support.ledger import assert_ledger_whole, wallet_of
from tests.support.threads import run_concurrently
from tests.support.world import grant, new_account, new_key

pytestmark = pytest.mark.django_db(transaction=True)

AMOUNT = 1_234_567  # nanos; every lot below ends mid-request, so requests split


def funded_for_exactly_100():
    """An account whose credits cover exactly 100 × AMOUNT, in lots of both
    pools whose edges fall inside requests."""
    account = new_account()
    in_a_day = timezone.now() + timedelta(days=1)
    grant(account, 37 * AMOUNT + 11, LotSource.GIFT)
    grant(account, 21 * AMOUNT - 11, LotSource.COMPENSATION, expires_at=in_a_day)
    grant(account, 30 * AMOUNT + 500, LotSource.ADJUSTMENT, pool=Pool.TOPUP)
    grant(account, 12 * AMOUNT - 500, LotSource.ADJUSTMENT, pool=Pool.TOPUP)
    topup, bonus, held = wallet_of(account)
    assert (topup + bonus, held) == (100 * AMOUNT, 0)
    return account


def test_200_concurrent_debits_against_a_balance_for_100():
    account = funded_for_exactly_100()

    def debit():
        return balance_debit(
            account=account, amount_nanos=AMOUNT, idempotency_key=new_key()
        )

    results = run_concurrently([debit] * 200)

    succeeded = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, InsufficientCredits)]
    others = [r for r in results if isinstance(r, Exception) and r not in refused]
    assert others == []
    assert (len(succeeded), len(refused)) == (100, 100)
    assert all(r.available_nanos == 0 and r.needed_nanos == AMOUNT for r in refused)
    assert len({r.entry.pk for r in succeeded}) == 100
    usage = LedgerEntry.objects.filter(account=account, kind=EntryKind.USAGE)
    assert usage.count() == 100
    assert {e.amount_nanos for e in usage} == {-AMOUNT}
    assert wallet_of(account) == (0, 0, 0)
    assert set(
        CreditLot.objects.filter(account=account).values_list(
            "remaining_nanos", flat=True
        )
    ) == {0}
    assert ledger_check() == []
    assert_ledger_whole(account)


def test_200_concurrent_holds_against_a_balance_for_100_then_settled_and_released():
    account = funded_for_exactly_100()

    def hold():
        return hold_place(account=account, amount_nanos=AMOUNT, reference="req")

    results = run_concurrently([hold] * 200)

    holds = [r for r in results if isinstance(r, Hold)]
    refused = [r for r in results if isinstance(r, InsufficientCredits)]
    assert (len(holds), len(refused)) == (100, 100)
    assert Hold.objects.filter(account=account, state=HoldState.ACTIVE).count() == 100
    assert wallet_of(account)[2] == 100 * AMOUNT
    assert ledger_check() == []
    assert_ledger_whole(account)

    # Half are settled (at varying costs within what they held), half
    # released, all at once.
    costs = {h.id: (AMOUNT // 2 + i * 1000) for i, h in enumerate(holds[:50])}

    def settle(hold_id):
        return lambda: hold_settle(hold_id=hold_id, cost_nanos=costs[hold_id])

    def release(hold_id):
        return lambda: hold_release(hold_id=hold_id)

    jobs = [settle(h.id) for h in holds[:50]] + [release(h.id) for h in holds[50:]]
    outcomes = run_concurrently(jobs)

    assert [o for o in outcomes if isinstance(o, Exception)] == []
    settlements = outcomes[:50]
    # Every cost is charged in full: each one's own hold covers it.
    assert [s.shortfall_nanos for s in settlements] == [0] * 50
    assert sum(s.charged_nanos for s in settlements) == sum(costs.values())
    assert outcomes[50:] == [True] * 50
    assert Hold.objects.filter(account=account, state=HoldState.ACTIVE).count() == 0
    topup, bonus, held = wallet_of(account)
    assert (topup + bonus, held) == (100 * AMOUNT - sum(costs.values()), 0)
    assert ledger_check() == []
    assert_ledger_whole(account)


def test_concurrent_holds_and_debits_never_overspend():
    account = funded_for_exactly_100()

    def debit():
        return balance_debit(
            account=account, amount_nanos=AMOUNT, idempotency_key=new_key()
        )

    def hold():
        return hold_place(account=account, amount_nanos=AMOUNT)

    results = run_concurrently([debit, hold] * 100)

    debits = [r for r in results if hasattr(r, "replayed")]
    holds = [r for r in results if isinstance(r, Hold)]
    refused = [r for r in results if isinstance(r, InsufficientCredits)]
    assert len(debits) + len(holds) == 100
    assert len(refused) == 100
    topup, bonus, held = wallet_of(account)
    assert (topup + bonus, held) == ((100 - len(debits)) * AMOUNT, len(holds) * AMOUNT)
    assert ledger_check() == []
    assert_ledger_whole(account)


def test_200_workers_growing_leases_against_a_balance_for_100_then_settling():
    account = funded_for_exactly_100()

    def grow():
        # A worker with no lease, for one request that may cost AMOUNT.
        return batch_settle(
            account=account,
            items=[],
            idempotency_key=new_key(),
            lease_need_nanos=AMOUNT,
            lease_min_nanos=AMOUNT,
            lease_want_nanos=AMOUNT,
        )

    grown = run_concurrently([grow] * 200)

    assert [g for g in grown if isinstance(g, Exception)] == []
    leases = [g.lease_id for g in grown if g.granted_nanos]
    assert len(leases) == 100
    assert all(g.granted_nanos in (0, AMOUNT) for g in grown)
    assert wallet_of(account)[2] == 100 * AMOUNT
    assert ledger_check() == []

    # Each worker's request is settled against its lease (at varying costs
    # within it) and the rest given back, all at once.
    costs = {lease: AMOUNT // 2 + i * 1000 for i, lease in enumerate(leases)}

    def settle(lease):
        return lambda: batch_settle(
            account=account,
            items=[BatchItem(costs[lease], on_lease=True)],
            idempotency_key=new_key(),
            lease_id=lease,
            lease_return_nanos=AMOUNT - costs[lease],
        )

    settled = run_concurrently([settle(lease) for lease in leases])

    assert [s for s in settled if isinstance(s, Exception)] == []
    # Every cost is charged in full: each one's lease covers it.
    assert [s.items[0].charged_nanos for s in settled] == list(costs.values())
    assert all(s.lease_id is None for s in settled)
    assert Hold.objects.filter(account=account, state=HoldState.ACTIVE).count() == 0
    topup, bonus, held = wallet_of(account)
    assert (topup + bonus, held) == (100 * AMOUNT - sum(costs.values()), 0)
    usage = LedgerEntry.objects.filter(account=account, kind=EntryKind.USAGE)
    assert -sum(e.amount_nanos for e in usage) == sum(costs.values())
    assert ledger_check() == []
    assert_ledger_whole(account)
