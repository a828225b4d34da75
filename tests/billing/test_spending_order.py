"""Spending order: bonus pool first (soonest expiry first, no expiry last, then
oldest), then top-up lots oldest first; a debit that crosses lots splits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.errors import InsufficientCredits
from billing.ledger.debits import balance_debit
from billing.ledger.grants import topup_credit
from billing.models import CreditLot, EntryKind, LotSource, Pool
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


def debit(account, amount_nanos, **kwargs):
    return balance_debit(
        account=account,
        amount_nanos=amount_nanos,
        idempotency_key=new_key("usage"),
        **kwargs,
    ).entry


def test_bonus_is_spent_before_top_up(customer):
    topup = topup_credit(
        account=customer,
        amount_nanos=10 * USD,
        idempotency_key=new_key(),
        reference="pi_1",
    )
    gift = lot_of(grant(customer, 1 * USD))

    entry = debit(customer, 4 * USD)

    # $2 of top-up bonus and the $1 gift, then $1 of top-up.
    assert entry.bonus_delta_nanos == -3 * USD
    assert entry.topup_delta_nanos == -1 * USD
    assert remaining(topup.bonus_lot) == 0
    assert remaining(gift) == 0
    assert remaining(topup.topup_lot) == 9 * USD
    assert wallet_of(customer) == (9 * USD, 0, 0)
    assert_ledger_whole(customer)


def test_spending_order_across_bonus_and_top_up_lots(customer):
    now = timezone.now()
    in_10_days = now + timedelta(days=10)
    in_30_days = now + timedelta(days=30)

    # Created in this order, so that "oldest" is this order too.
    first_topup = topup_credit(
        account=customer,
        amount_nanos=10 * USD,
        idempotency_key=new_key(),
        reference="pi_1",
    )
    t1, b1 = first_topup.topup_lot, first_topup.bonus_lot  # $10, bonus $2 in 365 days
    g_forever_1 = lot_of(grant(customer, 3 * USD))
    g_30d = lot_of(grant(customer, 4 * USD, expires_at=in_30_days))
    c_10d = lot_of(
        grant(customer, 5 * USD, LotSource.COMPENSATION, expires_at=in_10_days)
    )
    # Expires at the same moment as g_30d: the older one goes first.
    r_30d = lot_of(grant(customer, 1 * USD, LotSource.REFERRAL, expires_at=in_30_days))
    g_forever_2 = lot_of(grant(customer, 6 * USD))
    t2 = lot_of(grant(customer, 7 * USD, LotSource.ADJUSTMENT, pool=Pool.TOPUP))
    second_topup = topup_credit(
        account=customer,
        amount_nanos=20 * USD,
        idempotency_key=new_key(),
        reference="pi_2",
    )
    t3, b2 = second_topup.topup_lot, second_topup.bonus_lot  # $20, bonus $4

    assert b1.expires_at < b2.expires_at
    assert t2.pool == Pool.TOPUP
    assert wallet_of(customer) == (37 * USD, 25 * USD, 0)

    # Bonus pool: c_10d, g_30d, r_30d, b1, b2, g_forever_1, g_forever_2.
    # Top-up pool: t1, t2, t3.
    d1 = debit(customer, 7 * USD)
    assert movements_of(d1) == {c_10d.pk: -5 * USD, g_30d.pk: -2 * USD}
    assert (d1.kind, d1.amount_nanos) == (EntryKind.USAGE, -7 * USD)
    assert (d1.topup_delta_nanos, d1.bonus_delta_nanos) == (0, -7 * USD)
    assert (d1.topup_balance_nanos, d1.bonus_balance_nanos) == (37 * USD, 18 * USD)

    # Each debit below ends inside a lot: which lot, and how much of it is
    # left, pins the order down one lot at a time.
    half = USD // 2
    d2 = debit(customer, 2 * USD + half)
    assert movements_of(d2) == {g_30d.pk: -2 * USD, r_30d.pk: -half}
    assert (d2.topup_balance_nanos, d2.bonus_balance_nanos) == (
        37 * USD,
        15 * USD + half,
    )
    d3 = debit(customer, USD + half)
    assert movements_of(d3) == {r_30d.pk: -half, b1.pk: -USD}
    d4 = debit(customer, 3 * USD)
    assert movements_of(d4) == {b1.pk: -USD, b2.pk: -2 * USD}
    d5 = debit(customer, 3 * USD)
    assert movements_of(d5) == {b2.pk: -2 * USD, g_forever_1.pk: -USD}
    assert (d5.topup_delta_nanos, d5.bonus_delta_nanos) == (0, -3 * USD)
    assert (d5.topup_balance_nanos, d5.bonus_balance_nanos) == (37 * USD, 8 * USD)

    # Crosses from the bonus pool into the top-up pool.
    d6 = debit(customer, 10 * USD)
    assert movements_of(d6) == {
        g_forever_1.pk: -2 * USD,
        g_forever_2.pk: -6 * USD,
        t1.pk: -2 * USD,
    }
    assert (d6.amount_nanos, d6.topup_delta_nanos, d6.bonus_delta_nanos) == (
        -10 * USD,
        -2 * USD,
        -8 * USD,
    )
    assert (d6.topup_balance_nanos, d6.bonus_balance_nanos) == (35 * USD, 0)

    # An odd amount: the split is exact to the nano.
    d7 = debit(customer, 16 * USD + 1)
    assert movements_of(d7) == {t1.pk: -8 * USD, t2.pk: -7 * USD, t3.pk: -USD - 1}
    assert (d7.topup_delta_nanos, d7.bonus_delta_nanos) == (-16 * USD - 1, 0)
    assert (d7.topup_balance_nanos, d7.bonus_balance_nanos) == (19 * USD - 1, 0)

    lots = dict(
        CreditLot.objects.filter(account=customer).values_list("pk", "remaining_nanos")
    )
    assert lots == {
        c_10d.pk: 0,
        g_30d.pk: 0,
        r_30d.pk: 0,
        b1.pk: 0,
        b2.pk: 0,
        g_forever_1.pk: 0,
        g_forever_2.pk: 0,
        t1.pk: 0,
        t2.pk: 0,
        t3.pk: 19 * USD - 1,
    }
    assert wallet_of(customer) == (19 * USD - 1, 0, 0)
    assert_ledger_whole(customer)

    # Exactly what is left can be spent, and not a nano more.
    before = counts()
    with pytest.raises(InsufficientCredits) as refused:
        debit(customer, 19 * USD)
    assert refused.value.available_nanos == 19 * USD - 1
    assert refused.value.needed_nanos == 19 * USD
    assert counts() == before
    last = debit(customer, 19 * USD - 1)
    assert movements_of(last) == {t3.pk: -19 * USD + 1}
    assert wallet_of(customer) == (0, 0, 0)
    assert_ledger_whole(customer)


def test_expiring_bonus_is_spent_before_older_bonus_without_expiry(customer):
    forever = lot_of(grant(customer, 5 * USD))
    later = lot_of(
        grant(customer, 5 * USD, expires_at=timezone.now() + timedelta(days=2))
    )
    sooner = lot_of(
        grant(customer, 5 * USD, expires_at=timezone.now() + timedelta(days=1))
    )

    entry = debit(customer, 12 * USD)

    assert movements_of(entry) == {
        sooner.pk: -5 * USD,
        later.pk: -5 * USD,
        forever.pk: -2 * USD,
    }
    assert_ledger_whole(customer)


def test_debit_from_one_pool_takes_only_that_pools_lots(customer):
    gift = lot_of(grant(customer, 5 * USD))
    topup = lot_of(grant(customer, 8 * USD, LotSource.ADJUSTMENT, pool=Pool.TOPUP))

    entry = grant(
        customer,
        -3 * USD,
        LotSource.ADJUSTMENT,
        reason="charged twice by mistake",
        pool=Pool.TOPUP,
    )

    assert (entry.kind, entry.amount_nanos) == (EntryKind.ADJUSTMENT, -3 * USD)
    assert (entry.topup_delta_nanos, entry.bonus_delta_nanos) == (-3 * USD, 0)
    assert movements_of(entry) == {topup.pk: -3 * USD}
    assert remaining(gift) == 5 * USD
    assert wallet_of(customer) == (5 * USD, 5 * USD, 0)
    assert_ledger_whole(customer)


def test_negative_adjustment_defaults_to_the_bonus_pool(customer):
    grant(customer, 8 * USD, LotSource.ADJUSTMENT, pool=Pool.TOPUP)
    gift = lot_of(grant(customer, 5 * USD))

    entry = grant(customer, -2 * USD, LotSource.ADJUSTMENT)

    assert movements_of(entry) == {gift.pk: -2 * USD}
    assert wallet_of(customer) == (8 * USD, 3 * USD, 0)
    assert_ledger_whole(customer)
