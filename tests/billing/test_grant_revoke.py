"""A grant revoked by what remains of it: what was spent stays spent, what is
held stays held, and nothing goes below zero; once per grant."""

from __future__ import annotations

import pytest

from billing.errors import ReversalRefused
from billing.ledger.debits import balance_debit
from billing.ledger.grants import topup_credit
from billing.ledger.holds import hold_place
from billing.ledger.reversals import entry_reverse, grant_revoke
from billing.ledger.selectors import breakdown_get
from billing.models import EntryKind, LedgerEntry, LotSource
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


def referral(account, usd: int = 5):
    return grant(account, usd * USD, LotSource.REFERRAL)


def spend(account, nanos: int):
    balance_debit(account=account, amount_nanos=nanos, idempotency_key=new_key())


def test_an_unspent_grant_is_taken_back_whole(customer, ops):
    reward = referral(customer)

    revocation = grant_revoke(entry=reward, reason="order refunded", actor=ops)

    assert revocation.reverses_id == reward.pk
    assert (revocation.kind, revocation.amount_nanos) == (EntryKind.REFERRAL, -5 * USD)
    assert (revocation.topup_delta_nanos, revocation.bonus_delta_nanos) == (
        0,
        -5 * USD,
    )
    assert "order refunded" in revocation.description
    assert revocation.actor == ops
    assert movements_of(revocation) == {lot_of(reward).pk: -5 * USD}
    assert wallet_of(customer) == (0, 0, 0)
    assert breakdown_get(account=customer)["referrals"] == 0
    assert_ledger_whole(customer)


def test_only_what_remains_is_taken_and_nothing_goes_below_zero(customer):
    reward = referral(customer)
    spend(customer, 3 * USD + 7)

    revocation = grant_revoke(entry=reward, reason="order refunded")

    assert revocation.amount_nanos == -(2 * USD - 7)
    assert remaining(lot_of(reward)) == 0
    assert wallet_of(customer) == (0, 0, 0)
    assert breakdown_get(account=customer)["referrals"] == 3 * USD + 7
    assert_ledger_whole(customer)


def test_a_grant_spent_whole_takes_nothing_and_writes_nothing(customer):
    reward = referral(customer)
    spend(customer, 5 * USD)
    before = counts()

    assert grant_revoke(entry=reward, reason="order refunded") is None

    assert counts() == before
    assert_ledger_whole(customer)


def test_credits_held_by_requests_in_flight_are_not_taken(customer):
    reward = referral(customer)
    hold_place(account=customer, amount_nanos=4 * USD)

    revocation = grant_revoke(entry=reward, reason="order refunded")

    assert revocation.amount_nanos == -1 * USD
    assert wallet_of(customer) == (0, 4 * USD, 4 * USD)
    assert_ledger_whole(customer)


def test_at_most_up_to_is_taken(customer):
    reward = referral(customer)

    revocation = grant_revoke(entry=reward, reason="part", up_to_nanos=2 * USD)

    assert revocation.amount_nanos == -2 * USD
    assert remaining(lot_of(reward)) == 3 * USD
    assert_ledger_whole(customer)


def test_a_grant_is_revoked_once_and_not_after_a_reversal(customer):
    reward = referral(customer)
    first = grant_revoke(entry=reward, reason="once")
    before = counts()

    assert grant_revoke(entry=reward, reason="twice") == first
    assert counts() == before
    with pytest.raises(ReversalRefused, match="itself a reversal"):
        grant_revoke(entry=first, reason="undo")

    other = referral(customer)
    reversed_ = entry_reverse(entry=other, actor=None, reason="mistake")
    assert grant_revoke(entry=other, reason="again") == reversed_
    assert LedgerEntry.objects.filter(reverses=other).count() == 1
    assert_ledger_whole(customer)


def test_only_a_grant_is_revoked(customer):
    topup = topup_credit(
        account=customer,
        amount_nanos=10 * USD,
        idempotency_key=new_key(),
        reference="pi_x",
    )
    spend(customer, 1 * USD)
    usage = LedgerEntry.objects.get(account=customer, kind=EntryKind.USAGE)
    before = counts()

    for entry in (topup.topup_entry, topup.bonus_entry, usage):
        with pytest.raises(ReversalRefused, match="not a grant"):
            grant_revoke(entry=entry, reason="no")

    assert counts() == before
    assert_ledger_whole(customer)
