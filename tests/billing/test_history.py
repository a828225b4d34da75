"""Transaction history (usage grouped per UTC day, newest first) and the
credits breakdown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.db import connection, transaction
from django.db.models import F

from billing.ledger.debits import balance_debit
from billing.ledger.expiry import lots_expire_due
from billing.ledger.grants import topup_credit
from billing.ledger.holds import hold_place, hold_settle
from billing.ledger.reversals import entry_reverse
from billing.ledger.selectors import breakdown_get, transactions_list
from billing.models import (
    CreditLot,
    EntryKind,
    LedgerEntry,
    LotMovement,
    LotSource,
    Pool,
    Wallet,
)
from tests.support.ledger import USD, assert_ledger_whole, lot_of, wallet_of
from tests.support.world import grant, new_key


def at(
    day: int, hour: int, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    return datetime(2026, 3, day, hour, minute, second, micro, tzinfo=UTC)


def grant_at(moment, account, amount, source=LotSource.GIFT, **kwargs):
    # Python stamps credits with timezone.now(): freeze it at the moment.
    with mock.patch("django.utils.timezone.now", return_value=moment):
        return grant(account, amount, source, **kwargs)


@transaction.atomic
def usage_at(moment, account, lot, amount):
    """A usage debit of ``amount`` from ``lot``, dated ``moment``.

    The debit path stamps entries with the database clock, which a test cannot
    move back to another day; this writes the same rows a debit writes (entry,
    movement, lot, wallet) so that the ledger stays whole.
    """
    wallet = Wallet.objects.select_for_update().get(account=account)
    pool_field = "bonus_nanos" if lot.pool == Pool.BONUS else "topup_nanos"
    setattr(wallet, pool_field, getattr(wallet, pool_field) - amount)
    entry = LedgerEntry.objects.create(
        account=account,
        kind=EntryKind.USAGE,
        amount_nanos=-amount,
        topup_delta_nanos=0 if lot.pool == Pool.BONUS else -amount,
        bonus_delta_nanos=-amount if lot.pool == Pool.BONUS else 0,
        topup_balance_nanos=wallet.topup_nanos,
        bonus_balance_nanos=wallet.bonus_nanos,
        created_at=moment,
        description="gpt-5",
        idempotency_key=new_key("usage"),
    )
    LotMovement.objects.create(entry=entry, lot=lot, delta_nanos=-amount)
    CreditLot.objects.filter(pk=lot.pk).update(
        remaining_nanos=F("remaining_nanos") - amount
    )
    wallet.save(update_fields=["topup_nanos", "bonus_nanos"])
    return entry


@pytest.fixture
def history_world(customer):
    """Three UTC days of activity, in the order it happened."""
    gift = grant_at(at(10, 9), customer, 100 * USD)
    lot = lot_of(gift)
    u1 = usage_at(at(10, 10), customer, lot, 1 * USD)
    u2 = usage_at(at(10, 23, 59, 59, 999_999), customer, lot, 2 * USD + 1)
    u3 = usage_at(at(11, 0), customer, lot, 3 * USD)
    referral = grant_at(at(11, 12), customer, 5 * USD, LotSource.REFERRAL)
    compensation = grant_at(
        at(11, 12, 30), customer, 7 * USD, LotSource.COMPENSATION, expires_at=at(12, 0)
    )
    u4 = usage_at(at(11, 13), customer, lot, 4 * USD)
    u5 = usage_at(at(12, 8), customer, lot, 5 * USD)
    u6 = usage_at(at(12, 9), customer, lot, 6 * USD)
    assert lots_expire_due(now=at(12, 10)) == 1
    expiry = LedgerEntry.objects.get(account=customer, kind=EntryKind.EXPIRY)
    return {
        "gift": gift,
        "referral": referral,
        "compensation": compensation,
        "expiry": expiry,
        "usage": [u1, u2, u3, u4, u5, u6],
    }


def rows(history, start=0, stop=None):
    return [
        (r.id, r.created_at, r.amount_nanos, r.kind, r.count)
        for r in history[start:stop]
    ]


def test_history_groups_usage_per_utc_day_newest_first(customer, history_world):
    w = history_world
    u = w["usage"]

    history = transactions_list(account=customer)

    assert rows(history) == [
        (str(w["expiry"].pk), at(12, 10), -7 * USD, EntryKind.EXPIRY, 1),
        ("usage-2026-03-12", at(12, 9), -11 * USD, EntryKind.USAGE, 2),
        ("usage-2026-03-11", at(11, 13), -7 * USD, EntryKind.USAGE, 2),
        (str(w["compensation"].pk), at(11, 12, 30), 7 * USD, EntryKind.COMPENSATION, 1),
        (str(w["referral"].pk), at(11, 12), 5 * USD, EntryKind.REFERRAL, 1),
        (
            "usage-2026-03-10",
            at(10, 23, 59, 59, 999_999),
            -3 * USD - 1,
            EntryKind.USAGE,
            2,
        ),
        (str(w["gift"].pk), at(10, 9), 100 * USD, EntryKind.GIFT, 1),
    ]
    assert sum(r.amount_nanos for r in history[0:None]) == sum(wallet_of(customer))
    assert len(u) == 6
    first = history[0:1][0]
    assert (first.kind_label, first.method_label) == ("Expired credits", "Expiry")
    usage = history[1:2][0]
    assert (usage.kind_label, usage.method_label) == ("API usage", "API usage")
    assert_ledger_whole(customer)


def test_history_count_agrees_with_its_pages(customer, history_world):
    history = transactions_list(account=customer)
    everything = rows(history)

    assert history.count() == len(history) == len(everything) == 7
    pages = rows(history, 0, 3) + rows(history, 3, 6) + rows(history, 6, 9)
    assert pages == everything
    assert rows(history, 6, 100) == everything[6:]
    assert rows(history, 7, 10) == []
    assert rows(history, 5, 2) == []
    with pytest.raises(TypeError):
        history[0]
    with pytest.raises(TypeError):
        history[0:4:2]


def test_history_days_are_utc_whatever_the_session_time_zone(customer, history_world):
    expected = rows(transactions_list(account=customer))
    with connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'Asia/Tokyo'")
    try:
        assert [r[0] for r in rows(transactions_list(account=customer))] == [
            r[0] for r in expected
        ]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET TIME ZONE 'UTC'")


def test_history_is_per_account(customer, history_world, alice):
    assert transactions_list(account=alice.account).count() == 1
    assert transactions_list(account=customer).count() == 7


def test_breakdown_lines_sum_to_the_total(customer):
    topup = topup_credit(
        account=customer,
        amount_nanos=100 * USD,
        idempotency_key=new_key(),
        reference="pi",
    )
    grant(customer, 7 * USD)
    grant(customer, 3 * USD, LotSource.REFERRAL)
    expiring = at(1, 0).replace(year=2100)
    grant(customer, 4 * USD, LotSource.COMPENSATION, expires_at=expiring)
    grant(customer, 2 * USD, LotSource.ADJUSTMENT, pool=Pool.TOPUP)
    grant(customer, -USD, LotSource.ADJUSTMENT)
    usage = balance_debit(
        account=customer, amount_nanos=30 * USD + 1, idempotency_key=new_key()
    )
    hold = hold_place(account=customer, amount_nanos=10 * USD)
    hold_settle(hold_id=hold.id, cost_nanos=4 * USD)
    entry_reverse(entry=usage.entry, actor=None, reason="model outage")
    balance_debit(account=customer, amount_nanos=5 * USD, idempotency_key=new_key())
    lots_expire_due(now=expiring + timedelta(seconds=1))
    assert topup.bonus_lot.expires_at < expiring  # expired as well

    breakdown = breakdown_get(account=customer)

    # The bonus pool pays first. After the reversal and the last debit, the
    # expiry takes what remains of the top-up bonus ($14) and of the
    # compensation ($4).
    assert breakdown == {
        "top_ups": 100 * USD,
        "bonuses": 20 * USD,
        "gifts": 7 * USD,
        "referrals": 3 * USD,
        "compensations": 4 * USD,
        "adjustments": USD,
        "expired": -18 * USD,
        "usage": -9 * USD,
        "refunds": 0,
        "total": 108 * USD,
    }
    assert wallet_of(customer) == (101 * USD - 1, 7 * USD + 1, 0)
    assert_ledger_whole(customer)


def test_breakdown_of_an_empty_account_is_all_zero(customer):
    breakdown = breakdown_get(account=customer)
    assert set(breakdown) == {
        "top_ups",
        "bonuses",
        "gifts",
        "referrals",
        "compensations",
        "adjustments",
        "expired",
        "usage",
        "refunds",
        "total",
    }
    assert set(breakdown.values()) == {0}
