"""An idempotency key makes one journal entry, however often and however
concurrently it is posted; the same key for something else is a conflict."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings

from billing.errors import IdempotencyConflict
from billing.ledger.debits import balance_debit
from billing.ledger.grants import topup_credit
from billing.models import CreditLot, EntryKind, LedgerEntry, LotSource, Pool
from tests.support.ledger import USD, assert_ledger_whole, counts, wallet_of
from tests.support.threads import run_concurrently
from tests.support.world import grant, new_account, new_key


def entries_with(account, key):
    return list(LedgerEntry.objects.filter(account=account, idempotency_key=key))


def give(account, key, amount=5 * USD, source=LotSource.GIFT, **kwargs):
    """A grant under this idempotency key."""
    return grant(
        account, amount, source, reason="goodwill", idempotency_key=key, **kwargs
    )


def top_up(account, key, amount=100 * USD):
    return topup_credit(
        account=account, amount_nanos=amount, idempotency_key=key, reference=f"pi_{key}"
    )


def charge(account, key, amount=USD, **kwargs):
    return balance_debit(
        account=account, amount_nanos=amount, idempotency_key=key, **kwargs
    )


# --- debits ------------------------------------------------------------------------


def test_debit_posted_twice_is_charged_once(alice):
    account = alice.account
    first = charge(account, "req-1")
    before = counts()

    again = charge(account, "req-1")

    assert (first.replayed, again.replayed) == (False, True)
    assert again.entry.pk == first.entry.pk
    assert counts() == before
    assert len(entries_with(account, "req-1")) == 1
    assert wallet_of(account) == (0, 49 * USD, 0)
    assert_ledger_whole(account)


def test_debit_key_reused_for_another_amount_is_a_conflict(alice):
    account = alice.account
    charge(account, "req-1")
    before = counts()

    with pytest.raises(IdempotencyConflict, match="req-1"):
        charge(account, "req-1", amount=2 * USD)
    with pytest.raises(IdempotencyConflict, match="req-1"):
        charge(account, "req-1", kind=EntryKind.ADJUSTMENT)

    assert counts() == before


def test_debit_key_of_a_credit_is_a_conflict(alice):
    account = alice.account
    give(account, "shared-key", amount=USD)
    before = counts()

    with pytest.raises(IdempotencyConflict):
        charge(account, "shared-key", amount=USD)

    assert counts() == before


def test_the_same_key_on_another_account_is_another_debit(alice, bob):
    give(bob.account, new_key(), amount=10 * USD)

    charge(alice.account, "req-1")
    charge(bob.account, "req-1")

    assert wallet_of(alice.account) == (0, 49 * USD, 0)
    assert wallet_of(bob.account) == (0, 9 * USD, 0)
    assert_ledger_whole(alice.account, bob.account)


def test_a_replay_is_answered_even_when_the_balance_no_longer_covers_it(alice):
    account = alice.account
    first = charge(account, "req-1", amount=50 * USD)

    again = charge(account, "req-1", amount=50 * USD)

    assert (again.entry.pk, again.replayed) == (first.entry.pk, True)
    assert wallet_of(account) == (0, 0, 0)


# --- grants --------------------------------------------------------------------------


def test_grant_posted_twice_is_granted_once(alice):
    account = alice.account
    first = give(account, "gift-1")
    before = counts()

    again = give(account, "gift-1")

    assert again.pk == first.pk
    assert counts() == before
    assert wallet_of(account) == (0, 55 * USD, 0)
    assert_ledger_whole(account)


def test_negative_adjustment_posted_twice_takes_once(alice):
    account = alice.account
    first = give(account, "adj-1", amount=-5 * USD, source=LotSource.ADJUSTMENT)

    again = give(account, "adj-1", amount=-5 * USD, source=LotSource.ADJUSTMENT)

    assert again.pk == first.pk
    assert wallet_of(account) == (0, 45 * USD, 0)
    assert_ledger_whole(account)


@pytest.mark.parametrize(
    "changes",
    [
        {"amount": 6 * USD},
        {"source": LotSource.COMPENSATION},
        {"amount": -5 * USD, "source": LotSource.ADJUSTMENT},
    ],
)
def test_grant_key_reused_for_another_grant_is_a_conflict(alice, changes):
    account = alice.account
    give(account, "gift-1")
    before = counts()

    with pytest.raises(IdempotencyConflict, match="gift-1"):
        give(account, "gift-1", **changes)

    assert counts() == before


# --- top-ups -------------------------------------------------------------------------


def test_top_up_of_100_gives_100_and_a_bonus_of_20_that_expires(customer):
    result = top_up(customer, "pi_1")

    assert (result.topup_entry.kind, result.topup_entry.amount_nanos) == (
        EntryKind.TOPUP,
        100 * USD,
    )
    assert (result.bonus_entry.kind, result.bonus_entry.amount_nanos) == (
        EntryKind.BONUS,
        20 * USD,
    )
    assert (
        result.topup_entry.topup_delta_nanos,
        result.bonus_entry.bonus_delta_nanos,
    ) == (
        100 * USD,
        20 * USD,
    )
    assert (
        result.bonus_entry.topup_balance_nanos,
        result.bonus_entry.bonus_balance_nanos,
    ) == (
        100 * USD,
        20 * USD,
    )
    topup_lot = CreditLot.objects.get(pk=result.topup_lot.pk)
    bonus_lot = CreditLot.objects.get(pk=result.bonus_lot.pk)
    assert (topup_lot.source, topup_lot.pool, topup_lot.amount_nanos) == (
        LotSource.TOPUP,
        Pool.TOPUP,
        100 * USD,
    )
    assert topup_lot.expires_at is None
    assert (bonus_lot.source, bonus_lot.pool, bonus_lot.amount_nanos) == (
        LotSource.BONUS,
        Pool.BONUS,
        20 * USD,
    )
    assert bonus_lot.parent_id == topup_lot.pk
    assert bonus_lot.expires_at == result.topup_entry.created_at + timedelta(
        days=settings.BONUS_EXPIRY_DAYS
    )
    assert wallet_of(customer) == (100 * USD, 20 * USD, 0)
    assert_ledger_whole(customer)


def test_top_up_bonus_rounds_down_to_the_nano(customer):
    result = top_up(customer, "pi_odd", amount=9)
    assert result.bonus_entry.amount_nanos == 1
    small = top_up(customer, "pi_tiny", amount=4)
    assert (small.bonus_entry, small.bonus_lot) == (None, None)
    assert wallet_of(customer) == (13, 1, 0)
    assert_ledger_whole(customer)


def test_top_up_posted_twice_is_credited_once(customer):
    first = top_up(customer, "pi_1")
    before = counts()

    again = top_up(customer, "pi_1")

    assert again.topup_entry.pk == first.topup_entry.pk
    assert again.bonus_entry.pk == first.bonus_entry.pk
    assert again.topup_lot.pk == first.topup_lot.pk
    assert again.bonus_lot.pk == first.bonus_lot.pk
    assert counts() == before
    assert wallet_of(customer) == (100 * USD, 20 * USD, 0)
    assert_ledger_whole(customer)


def test_top_up_key_reused_for_another_amount_is_a_conflict(customer):
    top_up(customer, "pi_1")
    before = counts()

    with pytest.raises(IdempotencyConflict, match="pi_1"):
        top_up(customer, "pi_1", amount=50 * USD)
    with pytest.raises(IdempotencyConflict, match="pi_1"):
        give(customer, "pi_1", amount=100 * USD)

    assert counts() == before


# --- concurrently ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_debit_posted_20_times_concurrently_is_charged_once():
    account = new_account()
    grant(account, 10 * USD)

    results = run_concurrently([lambda: charge(account, "req-race")] * 20, workers=20)

    assert [r for r in results if isinstance(r, Exception)] == []
    [entry] = entries_with(account, "req-race")
    assert {r.entry.pk for r in results} == {entry.pk}
    assert sorted(r.replayed for r in results) == [False] + [True] * 19
    assert wallet_of(account) == (0, 9 * USD, 0)
    assert_ledger_whole(account)


@pytest.mark.django_db(transaction=True)
def test_grant_posted_20_times_concurrently_is_granted_once():
    account = new_account()

    results = run_concurrently([lambda: give(account, "gift-race")] * 20, workers=20)

    assert [r for r in results if isinstance(r, Exception)] == []
    [entry] = entries_with(account, "gift-race")
    assert {r.pk for r in results} == {entry.pk}
    assert CreditLot.objects.filter(account=account).count() == 1
    assert wallet_of(account) == (0, 5 * USD, 0)
    assert_ledger_whole(account)


@pytest.mark.django_db(transaction=True)
def test_top_up_posted_20_times_concurrently_is_credited_once():
    account = new_account()

    results = run_concurrently([lambda: top_up(account, "pi_race")] * 20, workers=20)

    assert [r for r in results if isinstance(r, Exception)] == []
    kinds = sorted(
        LedgerEntry.objects.filter(account=account).values_list("kind", flat=True)
    )
    assert kinds == [EntryKind.BONUS, EntryKind.TOPUP]
    assert {r.topup_entry.pk for r in results} == set(
        LedgerEntry.objects.filter(account=account, kind=EntryKind.TOPUP).values_list(
            "pk", flat=True
        )
    )
    assert len({r.bonus_entry.pk for r in results}) == 1
    assert CreditLot.objects.filter(account=account).count() == 2
    assert wallet_of(account) == (100 * USD, 20 * USD, 0)
    assert_ledger_whole(account)


@pytest.mark.django_db(transaction=True)
def test_concurrent_conflicting_amounts_write_exactly_one_entry():
    account = new_account()
    grant(account, 10 * USD)
    jobs = [
        lambda amount=amount: charge(account, "req-mixed", amount=amount)
        for amount in [USD, 2 * USD] * 10
    ]

    results = run_concurrently(jobs, workers=20)

    [entry] = entries_with(account, "req-mixed")
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert all(isinstance(r, IdempotencyConflict) for r in losers)
    assert {r.entry.pk for r in winners} == {entry.pk}
    assert len(winners) == 10  # every call with the winning amount
    assert wallet_of(account) == (0, 10 * USD + entry.amount_nanos, 0)
    assert_ledger_whole(account)
