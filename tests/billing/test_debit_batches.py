"""balance_debit_many: several debits of one account under one lock and one
commit, each charged or refused on its own, in order."""

from __future__ import annotations

import pytest

from billing.errors import IdempotencyConflict, InsufficientCredits, InvalidAmount
from billing.ledger.debits import DebitRequest, balance_debit, balance_debit_many
from billing.models import EntryKind, LedgerEntry, LotSource, Pool
from tests.support.ledger import (
    USD,
    assert_ledger_whole,
    counts,
    lot_of,
    movements_of,
    wallet_of,
)
from tests.support.world import grant


def test_a_batch_charges_in_order_and_refuses_each_debit_on_its_own(customer):
    gift = lot_of(grant(customer, 5 * USD))
    topup = lot_of(grant(customer, 5 * USD, LotSource.ADJUSTMENT, pool=Pool.TOPUP))
    balance_debit(account=customer, amount_nanos=USD, idempotency_key="old")

    outcomes = balance_debit_many(
        account=customer,
        debits=[
            DebitRequest(3 * USD, "a", "first"),
            DebitRequest(7 * USD, "b"),  # more than the 6 left: refused
            DebitRequest(2 * USD, "c"),
            DebitRequest(2 * USD, "old"),  # the key of another amount
            DebitRequest(USD, "old"),  # a replay
            DebitRequest(3 * USD, "a", "again"),  # a replay within the batch
            DebitRequest(4 * USD, "d"),  # 4 left: exactly enough
            DebitRequest(1, "e"),  # nothing left
        ],
    )

    a, b, c, old_conflict, old_replay, a_again, d, e = outcomes
    assert (a.replayed, c.replayed, d.replayed) == (False, False, False)
    assert isinstance(b, InsufficientCredits)
    assert (b.available_nanos, b.needed_nanos) == (6 * USD, 7 * USD)
    assert isinstance(old_conflict, IdempotencyConflict)
    assert old_replay.replayed is True
    assert old_replay.entry_id == LedgerEntry.objects.get(idempotency_key="old").pk
    assert (a_again.entry_id, a_again.replayed) == (a.entry_id, True)
    assert isinstance(e, InsufficientCredits)
    assert (e.available_nanos, e.needed_nanos) == (0, 1)

    assert movements_of(a.entry_id) == {gift.pk: -3 * USD}
    assert movements_of(c.entry_id) == {gift.pk: -USD, topup.pk: -USD}
    assert movements_of(d.entry_id) == {topup.pk: -4 * USD}
    assert (d.entry.topup_balance_nanos, d.entry.bonus_balance_nanos) == (0, 0)
    assert a.entry.description == "first"
    assert wallet_of(customer) == (0, 0, 0)
    usage = LedgerEntry.objects.filter(account=customer, kind=EntryKind.USAGE)
    assert usage.count() == 4
    assert_ledger_whole(customer)


def test_a_batch_with_a_bad_amount_writes_nothing(alice):
    before = counts()
    with pytest.raises(InvalidAmount):
        balance_debit_many(
            account=alice.account,
            debits=[DebitRequest(USD, "fine"), DebitRequest(0, "zero")],
        )
    assert counts() == before


def test_an_empty_batch_writes_nothing(alice):
    before = counts()
    assert balance_debit_many(account=alice.account, debits=[]) == []
    assert counts() == before
