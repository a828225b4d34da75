"""batch_settle: the settlement of a batch of an account's requests and of a
worker's lease of its credits, under one lock and one commit (billing_batch,
the function the proxy's settle path runs)."""

from __future__ import annotations

import uuid

import pytest

from billing.errors import HoldNotFound, InvalidAmount
from billing.ledger.holds import BatchItem, batch_settle, hold_place
from billing.models import EntryKind, Hold, HoldState, LedgerEntry, LotSource, Pool
from tests.support.ledger import (
    USD,
    assert_ledger_whole,
    counts,
    lot_of,
    movements_of,
    wallet_of,
)
from tests.support.world import grant, new_account, new_key


def settle(account, items, **lease):
    return batch_settle(
        account=account,
        items=items,
        idempotency_key=f"usage:{new_key()}",
        description="API usage",
        reference="batch",
        **lease,
    )


def test_a_batch_charges_each_request_and_writes_one_usage_entry(customer):
    gift = lot_of(grant(customer, 5 * USD))
    topup = lot_of(grant(customer, 10 * USD, LotSource.ADJUSTMENT, pool=Pool.TOPUP))
    first = hold_place(account=customer, amount_nanos=4 * USD)
    unused = hold_place(account=customer, amount_nanos=2 * USD)

    batch = settle(
        customer,
        [
            BatchItem(3 * USD, hold_id=first.id),
            BatchItem(4 * USD, on_lease=True),  # no lease: from what is available
            BatchItem(0, hold_id=unused.id),  # produced nothing: only released
        ],
    )

    assert [i.outcome for i in batch.items] == ["settled", "charged", "settled"]
    # The bonus pool first, in the order of the batch.
    assert [(i.charged_nanos, i.topup_nanos, i.bonus_nanos) for i in batch.items] == [
        (3 * USD, 0, 3 * USD),
        (4 * USD, 2 * USD, 2 * USD),
        (0, 0, 0),
    ]
    entry = LedgerEntry.objects.get(pk=batch.entry_id)
    assert (entry.kind, entry.amount_nanos, entry.reference) == (
        EntryKind.USAGE,
        -7 * USD,
        "batch",
    )
    assert movements_of(entry) == {gift.pk: -5 * USD, topup.pk: -2 * USD}
    assert LedgerEntry.objects.filter(kind=EntryKind.USAGE).count() == 1
    settled = {h.pk: h for h in Hold.objects.filter(pk__in=[first.id, unused.id])}
    assert (settled[first.id].state, settled[first.id].charged_nanos) == (
        HoldState.SETTLED,
        3 * USD,
    )
    assert settled[first.id].entry_id == entry.pk
    assert (settled[unused.id].state, settled[unused.id].entry_id) == (
        HoldState.SETTLED,
        None,
    )
    assert (batch.lease_id, batch.lease_nanos, batch.available_nanos) == (
        None,
        0,
        8 * USD,
    )
    assert wallet_of(customer) == (8 * USD, 0, 0)
    assert_ledger_whole(customer)


def test_a_batch_never_charges_what_other_requests_hold(alice):
    account = alice.account
    hold_place(account=account, amount_nanos=45 * USD)

    batch = settle(account, [BatchItem(3 * USD), BatchItem(3 * USD)])

    # 5 are free: the first is charged in full, the second what is left.
    assert [i.charged_nanos for i in batch.items] == [3 * USD, 2 * USD]
    assert wallet_of(account) == (0, 45 * USD, 45 * USD)
    assert_ledger_whole(account)


def test_a_lease_grows_serves_requests_and_is_given_back(alice):
    account = alice.account

    # Grown by at least the need, at most the want, never by more than the
    # need and a quarter of what is available.
    grown = settle(
        account,
        [],
        lease_need_nanos=2 * USD,
        lease_min_nanos=USD,
        lease_want_nanos=30 * USD,
    )
    leased = 2 * USD + 50 * USD // 4
    assert grown.granted_nanos == grown.lease_nanos == leased
    lease = Hold.objects.get(pk=grown.lease_id)
    assert (lease.state, lease.amount_nanos, lease.reference) == (
        HoldState.ACTIVE,
        leased,
        "lease",
    )
    assert wallet_of(account) == (0, 50 * USD, leased)
    assert grown.available_nanos == 50 * USD - leased
    assert LedgerEntry.objects.filter(kind=EntryKind.USAGE).count() == 0

    # A request admitted against the lease is taken out of it.
    used = settle(account, [BatchItem(3 * USD, on_lease=True)], lease_id=grown.lease_id)
    assert used.items[0].charged_nanos == 3 * USD
    assert (used.lease_id, used.lease_nanos) == (grown.lease_id, leased - 3 * USD)
    assert wallet_of(account) == (0, 47 * USD, leased - 3 * USD)
    assert_ledger_whole(account)

    # Given back whole, the lease is released.
    back = settle(
        account, [], lease_id=grown.lease_id, lease_return_nanos=leased - 3 * USD
    )
    assert (back.lease_id, back.lease_nanos, back.available_nanos) == (
        None,
        0,
        47 * USD,
    )
    assert Hold.objects.get(pk=grown.lease_id).state == HoldState.RELEASED
    assert wallet_of(account) == (0, 47 * USD, 0)
    assert_ledger_whole(account)


def test_a_lease_short_of_the_need_grows_by_the_smallest_request_or_not_at_all(
    alice,
):
    account = alice.account
    hold_place(account=account, amount_nanos=48 * USD)

    small = settle(
        account,
        [],
        lease_need_nanos=5 * USD,
        lease_min_nanos=USD,
        lease_want_nanos=9 * USD,
    )
    assert small.granted_nanos == USD
    none = settle(
        account,
        [],
        lease_need_nanos=5 * USD,
        lease_min_nanos=2 * USD,
        lease_want_nanos=9 * USD,
    )
    assert (none.granted_nanos, none.lease_id) == (0, None)
    assert wallet_of(account) == (0, 50 * USD, 49 * USD)
    assert_ledger_whole(account)


def test_a_retried_batch_charges_each_hold_once(alice):
    account = alice.account
    hold = hold_place(account=account, amount_nanos=5 * USD)
    items = [BatchItem(2 * USD, hold_id=hold.id)]
    settle(account, items)
    before = counts()

    again = settle(account, items)
    other_cost = settle(account, [BatchItem(3 * USD, hold_id=hold.id)])

    assert [(i.outcome, i.charged_nanos) for i in again.items] == [("replayed", 0)]
    assert [(i.outcome, i.charged_nanos) for i in other_cost.items] == [("conflict", 0)]
    assert again.entry_id is None
    assert counts() == before
    assert wallet_of(account) == (0, 48 * USD, 0)
    # Twice in one batch: settled once.
    second = hold_place(account=account, amount_nanos=5 * USD)
    twice = settle(account, [BatchItem(USD, hold_id=second.id)] * 2)
    assert [(i.outcome, i.charged_nanos) for i in twice.items] == [
        ("settled", USD),
        ("replayed", 0),
    ]
    assert wallet_of(account) == (0, 47 * USD, 0)
    assert_ledger_whole(account)


def test_a_hold_of_another_account_is_refused(alice):
    bob = new_account()
    grant(bob, 5 * USD)
    hold = hold_place(account=bob, amount_nanos=USD)
    before = counts()

    with pytest.raises(HoldNotFound):
        settle(alice.account, [BatchItem(USD, hold_id=hold.id)])
    with pytest.raises(HoldNotFound):
        settle(alice.account, [BatchItem(USD, hold_id=uuid.uuid4())])

    assert counts() == before


def test_a_bad_cost_writes_nothing(alice):
    before = counts()
    with pytest.raises(InvalidAmount):
        settle(alice.account, [BatchItem(USD), BatchItem(-1)])
    assert counts() == before
