"""Mistakes are corrected by a new entry that names the one it reverses."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.errors import InsufficientCredits, InvalidAmount, ReversalRefused
from billing.ledger.debits import balance_debit
from billing.ledger.expiry import lots_expire_due
from billing.ledger.grants import topup_credit
from billing.ledger.holds import hold_place, hold_settle
from billing.ledger.reversals import entry_reverse
from billing.models import EntryKind, LedgerEntry, LotSource, Pool
from tests.support.ledger import (
    USD,
    assert_ledger_whole,
    counts,
    lot_of,
    movements_of,
    remaining,
    wallet_of,
)
from tests.support.threads import run_concurrently
from tests.support.world import grant, new_account, new_key


def reverse(entry, reason="operator mistake", actor=None):
    return entry_reverse(entry=entry, actor=actor, reason=reason)


def test_reversing_a_gift_takes_it_back(alice, ops):
    account = alice.account
    gift = grant(account, 7 * USD)
    lot = lot_of(gift)

    reversal = reverse(gift, reason="granted to the wrong customer", actor=ops)

    assert reversal.reverses_id == gift.pk
    assert (reversal.kind, reversal.amount_nanos) == (EntryKind.GIFT, -7 * USD)
    assert (reversal.topup_delta_nanos, reversal.bonus_delta_nanos) == (0, -7 * USD)
    assert (reversal.topup_balance_nanos, reversal.bonus_balance_nanos) == (0, 50 * USD)
    assert reversal.actor == ops
    assert "granted to the wrong customer" in reversal.description
    assert movements_of(reversal) == {lot.pk: -7 * USD}
    assert remaining(lot) == 0
    assert wallet_of(account) == (0, 50 * USD, 0)
    assert LedgerEntry.objects.get(reverses=gift) == reversal
    assert_ledger_whole(account)


def test_reversing_a_partly_spent_gift_is_refused(customer):
    gift = grant(customer, 7 * USD)
    balance_debit(account=customer, amount_nanos=1, idempotency_key=new_key())
    before = counts()

    with pytest.raises(ReversalRefused, match="remains"):
        reverse(gift)

    assert counts() == before
    assert_ledger_whole(customer)


def test_reversing_a_gift_that_is_held_is_refused(customer):
    gift = grant(customer, 7 * USD)
    hold_place(account=customer, amount_nanos=1)
    before = counts()

    with pytest.raises(InsufficientCredits, match="held"):
        reverse(gift)

    assert counts() == before
    assert_ledger_whole(customer)


def test_reversing_a_usage_debit_returns_the_credits_to_the_same_lots(customer):
    soon = lot_of(
        grant(customer, 3 * USD, expires_at=timezone.now() + timedelta(days=1))
    )
    forever = lot_of(grant(customer, 4 * USD))
    topup = lot_of(grant(customer, 10 * USD, LotSource.ADJUSTMENT, pool=Pool.TOPUP))
    usage = balance_debit(
        account=customer, amount_nanos=9 * USD, idempotency_key=new_key()
    ).entry
    assert movements_of(usage) == {
        soon.pk: -3 * USD,
        forever.pk: -4 * USD,
        topup.pk: -2 * USD,
    }

    reversal = reverse(usage)

    assert (reversal.kind, reversal.amount_nanos) == (EntryKind.USAGE, 9 * USD)
    assert (reversal.topup_delta_nanos, reversal.bonus_delta_nanos) == (
        2 * USD,
        7 * USD,
    )
    assert (reversal.topup_balance_nanos, reversal.bonus_balance_nanos) == (
        10 * USD,
        7 * USD,
    )
    assert movements_of(reversal) == {
        soon.pk: 3 * USD,
        forever.pk: 4 * USD,
        topup.pk: 2 * USD,
    }

    assert [remaining(lot) for lot in (soon, forever, topup)] == [
        3 * USD,
        4 * USD,
        10 * USD,
    ]
    assert wallet_of(customer) == (10 * USD, 7 * USD, 0)
    assert_ledger_whole(customer)


def test_reversing_a_settled_hold_refunds_the_request(alice):
    account = alice.account
    hold = hold_place(account=account, amount_nanos=5 * USD)
    settlement = hold_settle(hold_id=hold.id, cost_nanos=2 * USD)

    reversal = reverse(LedgerEntry.objects.get(pk=settlement.entry_id))

    assert reversal.amount_nanos == 2 * USD
    assert wallet_of(account) == (0, 50 * USD, 0)
    assert_ledger_whole(account)


def test_reversing_a_negative_adjustment_gives_the_credits_back(alice):
    account = alice.account
    adjustment = grant(account, -5 * USD, LotSource.ADJUSTMENT)

    reversal = reverse(adjustment)

    assert (reversal.kind, reversal.amount_nanos) == (EntryKind.ADJUSTMENT, 5 * USD)
    assert wallet_of(account) == (0, 50 * USD, 0)
    assert_ledger_whole(account)


def test_reversing_a_top_up_takes_back_the_top_up_lot_only(customer):
    topup = topup_credit(
        account=customer,
        amount_nanos=10 * USD,
        idempotency_key=new_key(),
        reference="pi",
    )

    reversal = reverse(topup.topup_entry)

    assert (reversal.kind, reversal.amount_nanos) == (EntryKind.TOPUP, -10 * USD)
    assert wallet_of(customer) == (0, 2 * USD, 0)
    reverse(topup.bonus_entry)
    assert wallet_of(customer) == (0, 0, 0)
    assert_ledger_whole(customer)


def test_reversing_twice_returns_the_same_reversal(alice):
    account = alice.account
    usage = balance_debit(
        account=account, amount_nanos=USD, idempotency_key=new_key()
    ).entry
    first = reverse(usage)
    before = counts()

    again = reverse(usage, reason="clicked twice")

    assert again.pk == first.pk
    assert counts() == before
    assert wallet_of(account) == (0, 50 * USD, 0)
    assert_ledger_whole(account)


def test_reversing_a_fully_reversed_gift_again_returns_the_same_reversal(alice):
    gift = grant(alice.account, USD)
    first = reverse(gift)
    before = counts()

    assert reverse(gift).pk == first.pk
    assert counts() == before


def test_reversing_a_reversal_is_refused(alice):
    gift = grant(alice.account, USD)
    reversal = reverse(gift)
    before = counts()

    with pytest.raises(ReversalRefused, match="itself a reversal"):
        reverse(reversal)

    assert counts() == before
    assert_ledger_whole(alice.account)


def test_reversing_an_expiry_is_refused(customer):
    grant(customer, USD, expires_at=timezone.now() + timedelta(hours=1))
    lots_expire_due(now=timezone.now() + timedelta(hours=2))
    expiry = LedgerEntry.objects.get(account=customer, kind=EntryKind.EXPIRY)
    before = counts()

    with pytest.raises(ReversalRefused, match="not revived"):
        reverse(expiry)

    assert counts() == before


@pytest.mark.parametrize("reason", ["", "  ", None])
def test_reversal_needs_a_reason(alice, reason):
    gift = grant(alice.account, USD)
    before = counts()

    with pytest.raises(InvalidAmount, match="reason is required"):
        reverse(gift, reason=reason)

    assert counts() == before


@pytest.mark.django_db(transaction=True)
def test_reversing_20_times_concurrently_reverses_once():
    account = new_account()
    grant(account, 10 * USD)
    usage = balance_debit(
        account=account, amount_nanos=3 * USD, idempotency_key=new_key()
    )
    entry = usage.entry

    results = run_concurrently([lambda: reverse(entry)] * 20, workers=20)

    assert [r for r in results if isinstance(r, Exception)] == []
    [reversal] = LedgerEntry.objects.filter(reverses=entry)
    assert {r.pk for r in results} == {reversal.pk}
    assert wallet_of(account) == (0, 10 * USD, 0)
    assert_ledger_whole(account)
