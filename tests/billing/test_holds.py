"""Holds: credits set aside for a request in flight, settled at the actual cost
in the spending order, released, or swept when their worker died."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from billing.errors import HoldNotFound, IdempotencyConflict, InsufficientCredits
from billing.ledger.debits import balance_debit
from billing.ledger.holds import (
    hold_place,
    hold_release,
    hold_settle,
    holds_sweep_stale,
)
from billing.ledger.selectors import balance_get
from billing.models import EntryKind, Hold, HoldState, LedgerEntry, LotSource, Pool
from tests.support.ledger import (
    USD,
    assert_ledger_whole,
    counts,
    lot_of,
    movements_of,
    remaining,
    wallet_of,
)
from tests.support.world import grant, new_key


def state_of(hold) -> str:
    return Hold.objects.values_list("state", flat=True).get(pk=hold.id)


def test_hold_sets_credits_aside(alice):
    account = alice.account
    hold = hold_place(account=account, amount_nanos=30 * USD, reference="req_1")

    row = Hold.objects.get(pk=hold.id)
    assert (row.state, row.amount_nanos, row.reference) == (
        HoldState.ACTIVE,
        30 * USD,
        "req_1",
    )
    assert row.expires_at > timezone.now()
    assert wallet_of(account) == (0, 50 * USD, 30 * USD)
    balance = balance_get(account=account)
    assert (balance.total_nanos, balance.available_nanos) == (50 * USD, 20 * USD)
    # A hold writes no journal entry: the balance has not changed yet.
    assert LedgerEntry.objects.filter(account=account).count() == 1
    assert_ledger_whole(account)


def test_hold_is_refused_when_available_is_below_the_amount(alice):
    account = alice.account
    hold_place(account=account, amount_nanos=30 * USD)
    before = counts()

    with pytest.raises(InsufficientCredits) as refused:
        hold_place(account=account, amount_nanos=20 * USD + 1)

    assert (refused.value.available_nanos, refused.value.needed_nanos) == (
        20 * USD,
        20 * USD + 1,
    )
    assert counts() == before
    # Exactly what is available can be held.
    hold_place(account=account, amount_nanos=20 * USD)
    assert wallet_of(account) == (0, 50 * USD, 50 * USD)
    assert_ledger_whole(account)


def test_debit_cannot_spend_held_credits(alice):
    account = alice.account
    hold_place(account=account, amount_nanos=45 * USD)
    before = counts()

    with pytest.raises(InsufficientCredits) as refused:
        balance_debit(
            account=account, amount_nanos=5 * USD + 1, idempotency_key=new_key()
        )

    assert refused.value.available_nanos == 5 * USD
    assert counts() == before
    balance_debit(account=account, amount_nanos=5 * USD, idempotency_key=new_key())
    assert wallet_of(account) == (0, 45 * USD, 45 * USD)
    assert_ledger_whole(account)


def test_settle_charges_the_actual_cost_in_the_spending_order_and_releases(customer):
    topup = lot_of(grant(customer, 10 * USD, LotSource.ADJUSTMENT, pool=Pool.TOPUP))
    forever = lot_of(grant(customer, 2 * USD))
    soon = lot_of(
        grant(customer, 1 * USD, expires_at=timezone.now() + timedelta(hours=1))
    )
    hold = hold_place(account=customer, amount_nanos=8 * USD)

    settlement = hold_settle(
        hold_id=hold.id, cost_nanos=4 * USD + 7, description="gpt-5", reference="req_9"
    )

    assert (settlement.charged_nanos, settlement.shortfall_nanos) == (4 * USD + 7, 0)
    assert settlement.replayed is False
    entry = LedgerEntry.objects.get(pk=settlement.entry_id)
    assert (entry.kind, entry.amount_nanos) == (EntryKind.USAGE, -4 * USD - 7)
    assert (entry.topup_delta_nanos, entry.bonus_delta_nanos) == (-USD - 7, -3 * USD)
    assert (entry.topup_balance_nanos, entry.bonus_balance_nanos) == (9 * USD - 7, 0)
    assert (entry.description, entry.reference) == ("gpt-5", "req_9")
    assert entry.idempotency_key == f"hold:{hold.id}"
    assert movements_of(entry) == {
        soon.pk: -USD,
        forever.pk: -2 * USD,
        topup.pk: -USD - 7,
    }
    assert remaining(topup) == 9 * USD - 7
    row = Hold.objects.get(pk=hold.id)
    assert (row.state, row.charged_nanos, row.entry_id) == (
        HoldState.SETTLED,
        4 * USD + 7,
        entry.pk,
    )
    assert row.closed_at is not None
    assert wallet_of(customer) == (9 * USD - 7, 0, 0)
    assert_ledger_whole(customer)


def test_settle_may_charge_more_than_was_held_from_what_is_available(alice):
    account = alice.account
    hold = hold_place(account=account, amount_nanos=USD)

    settlement = hold_settle(hold_id=hold.id, cost_nanos=3 * USD)

    assert (settlement.charged_nanos, settlement.shortfall_nanos) == (3 * USD, 0)
    assert wallet_of(account) == (0, 47 * USD, 0)
    assert_ledger_whole(account)


def test_settle_never_takes_credits_held_by_other_requests(alice):
    account = alice.account
    mine = hold_place(account=account, amount_nanos=10 * USD)
    hold_place(account=account, amount_nanos=35 * USD)

    # The cost is 20; what this request may take is its own 10 + the free 5.
    settlement = hold_settle(hold_id=mine.id, cost_nanos=20 * USD)

    assert (settlement.charged_nanos, settlement.shortfall_nanos) == (15 * USD, 5 * USD)
    assert wallet_of(account) == (0, 35 * USD, 35 * USD)
    assert_ledger_whole(account)


def test_settling_twice_is_a_replay(alice):
    account = alice.account
    hold = hold_place(account=account, amount_nanos=10 * USD)
    first = hold_settle(hold_id=hold.id, cost_nanos=3 * USD)
    before = counts()

    again = hold_settle(hold_id=hold.id, cost_nanos=3 * USD)

    assert again.entry_id == first.entry_id
    assert again.charged_nanos == 3 * USD
    assert again.replayed is True
    assert counts() == before
    assert wallet_of(account) == (0, 47 * USD, 0)
    assert_ledger_whole(account)


def test_settling_again_at_another_cost_is_a_conflict(alice):
    hold = hold_place(account=alice.account, amount_nanos=10 * USD)
    hold_settle(hold_id=hold.id, cost_nanos=3 * USD)
    before = counts()

    with pytest.raises(IdempotencyConflict, match="already settled"):
        hold_settle(hold_id=hold.id, cost_nanos=4 * USD)

    assert counts() == before


def test_settling_twice_after_a_shortfall_is_still_a_replay(alice):
    account = alice.account
    hold = hold_place(account=account, amount_nanos=10 * USD)
    balance_debit(account=account, amount_nanos=40 * USD, idempotency_key=new_key())
    first = hold_settle(hold_id=hold.id, cost_nanos=25 * USD)
    assert (first.charged_nanos, first.shortfall_nanos) == (10 * USD, 15 * USD)
    before = counts()

    # The worker retries with exactly the same arguments: the first answer.
    again = hold_settle(hold_id=hold.id, cost_nanos=25 * USD)

    assert (again.entry_id, again.charged_nanos, again.replayed) == (
        first.entry_id,
        10 * USD,
        True,
    )
    assert again.shortfall_nanos == first.shortfall_nanos
    assert counts() == before
    assert wallet_of(account) == (0, 0, 0)
    assert_ledger_whole(account)


def test_settle_at_zero_cost_only_releases(alice):
    account = alice.account
    hold = hold_place(account=account, amount_nanos=10 * USD)
    entries = LedgerEntry.objects.count()

    settlement = hold_settle(hold_id=hold.id, cost_nanos=0)

    assert (
        settlement.entry_id,
        settlement.charged_nanos,
        settlement.shortfall_nanos,
    ) == (
        None,
        0,
        0,
    )
    assert LedgerEntry.objects.count() == entries
    assert state_of(hold) == HoldState.SETTLED
    assert wallet_of(account) == (0, 50 * USD, 0)
    again = hold_settle(hold_id=hold.id, cost_nanos=0)
    assert (again.entry_id, again.replayed) == (None, True)
    assert wallet_of(account) == (0, 50 * USD, 0)
    assert_ledger_whole(account)


def test_release_frees_the_hold_once(alice):
    account = alice.account
    hold = hold_place(account=account, amount_nanos=10 * USD)
    entries = LedgerEntry.objects.count()

    assert hold_release(hold_id=hold.id) is True
    assert state_of(hold) == HoldState.RELEASED
    assert wallet_of(account) == (0, 50 * USD, 0)
    assert hold_release(hold_id=hold.id) is False
    assert wallet_of(account) == (0, 50 * USD, 0)
    assert LedgerEntry.objects.count() == entries
    assert_ledger_whole(account)


def test_a_settled_hold_is_not_released(alice):
    account = alice.account
    hold = hold_place(account=account, amount_nanos=10 * USD)
    hold_settle(hold_id=hold.id, cost_nanos=USD)

    assert hold_release(hold_id=hold.id) is False
    assert state_of(hold) == HoldState.SETTLED
    assert wallet_of(account) == (0, 49 * USD, 0)
    assert_ledger_whole(account)


def test_unknown_hold_is_refused(alice):
    before = counts()
    with pytest.raises(HoldNotFound):
        hold_settle(hold_id=uuid.uuid4(), cost_nanos=USD)
    with pytest.raises(HoldNotFound):
        hold_release(hold_id=uuid.uuid4())
    assert counts() == before


def test_hold_with_a_zero_ttl_is_stale_at_once(alice):
    # A TTL of zero means "no time at all", not "the default TTL".
    hold = hold_place(account=alice.account, amount_nanos=USD, ttl=timedelta(0))

    assert Hold.objects.get(pk=hold.id).expires_at <= timezone.now()
    assert holds_sweep_stale() == 1


def test_sweep_releases_only_expired_active_holds_once(alice):
    account = alice.account
    stale = hold_place(
        account=account, amount_nanos=10 * USD, ttl=timedelta(seconds=-1)
    )
    fresh = hold_place(account=account, amount_nanos=5 * USD)
    settled = hold_place(
        account=account, amount_nanos=2 * USD, ttl=timedelta(seconds=-1)
    )
    hold_settle(hold_id=settled.id, cost_nanos=USD)

    assert holds_sweep_stale() == 1
    assert state_of(stale) == HoldState.EXPIRED
    assert state_of(fresh) == HoldState.ACTIVE
    assert state_of(settled) == HoldState.SETTLED
    assert wallet_of(account) == (0, 49 * USD, 5 * USD)
    assert holds_sweep_stale() == 0
    assert wallet_of(account) == (0, 49 * USD, 5 * USD)
    assert_ledger_whole(account)

    # Later, the fresh hold's own time runs out too.
    later = timezone.now() + timedelta(days=1)
    assert holds_sweep_stale(now=later) == 1
    assert holds_sweep_stale(now=later) == 0
    assert state_of(fresh) == HoldState.EXPIRED
    assert wallet_of(account) == (0, 49 * USD, 0)
    assert_ledger_whole(account)


def test_settling_a_swept_hold_still_charges_what_is_available(alice):
    account = alice.account
    hold = hold_place(account=account, amount_nanos=10 * USD, ttl=timedelta(seconds=-1))
    assert holds_sweep_stale() == 1

    # The response did reach the client: it is billed all the same.
    settlement = hold_settle(hold_id=hold.id, cost_nanos=4 * USD)

    assert (settlement.charged_nanos, settlement.shortfall_nanos) == (4 * USD, 0)
    assert state_of(hold) == HoldState.SETTLED
    assert wallet_of(account) == (0, 46 * USD, 0)
    assert_ledger_whole(account)


def test_settling_a_swept_hold_never_takes_credits_held_by_others(alice):
    account = alice.account
    hold = hold_place(account=account, amount_nanos=10 * USD, ttl=timedelta(seconds=-1))
    holds_sweep_stale()
    hold_place(account=account, amount_nanos=47 * USD)

    settlement = hold_settle(hold_id=hold.id, cost_nanos=4 * USD)

    assert (settlement.charged_nanos, settlement.shortfall_nanos) == (3 * USD, USD)
    assert wallet_of(account) == (0, 47 * USD, 47 * USD)
    assert_ledger_whole(account)


def test_settling_a_released_hold_with_nothing_available_writes_no_entry(alice):
    account = alice.account
    hold = hold_place(account=account, amount_nanos=10 * USD)
    hold_release(hold_id=hold.id)
    balance_debit(account=account, amount_nanos=50 * USD, idempotency_key=new_key())
    entries = LedgerEntry.objects.count()

    settlement = hold_settle(hold_id=hold.id, cost_nanos=4 * USD)

    assert (
        settlement.entry_id,
        settlement.charged_nanos,
        settlement.shortfall_nanos,
    ) == (
        None,
        0,
        4 * USD,
    )
    assert LedgerEntry.objects.count() == entries
    assert wallet_of(account) == (0, 0, 0)
    assert_ledger_whole(account)
