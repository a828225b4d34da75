"""Expiry moves what remains of an expired lot into one ``expiry`` entry, once,
even when it runs twice or beside debits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from billing.ledger.debits import balance_debit
from billing.ledger.expiry import lots_expire_due
from billing.ledger.grants import topup_credit
from billing.ledger.holds import hold_place, hold_release
from billing.models import (
    CreditLot,
    EntryKind,
    LedgerEntry,
    LotMovement,
    LotSource,
    Pool,
)
from tests.support.ledger import (
    USD,
    assert_ledger_whole,
    lot_of,
    movements_of,
    remaining,
    wallet_of,
)
from tests.support.threads import run_concurrently
from tests.support.world import grant, new_account, new_key


def expiries(account):
    return list(
        LedgerEntry.objects.filter(account=account, kind=EntryKind.EXPIRY).order_by(
            "id"
        )
    )


def test_expiry_runs_twice_but_expires_once(customer):
    in_an_hour = timezone.now() + timedelta(hours=1)
    expiring = lot_of(grant(customer, 3 * USD + 5, expires_at=in_an_hour))
    forever = lot_of(grant(customer, 2 * USD))
    later = in_an_hour + timedelta(minutes=1)

    assert lots_expire_due(now=later) == 1
    assert lots_expire_due(now=later) == 0

    [entry] = expiries(customer)
    assert (entry.amount_nanos, entry.topup_delta_nanos, entry.bonus_delta_nanos) == (
        -3 * USD - 5,
        0,
        -3 * USD - 5,
    )
    assert (entry.topup_balance_nanos, entry.bonus_balance_nanos) == (0, 2 * USD)
    assert entry.reference == f"lot:{expiring.pk}"
    assert movements_of(entry) == {expiring.pk: -3 * USD - 5}
    assert remaining(expiring) == 0
    assert remaining(forever) == 2 * USD
    assert wallet_of(customer) == (0, 2 * USD, 0)
    assert_ledger_whole(customer)


def test_nothing_expires_before_its_time(customer):
    in_an_hour = timezone.now() + timedelta(hours=1)
    lot = lot_of(grant(customer, USD, expires_at=in_an_hour))

    assert lots_expire_due(now=in_an_hour - timedelta(microseconds=1)) == 0
    assert lots_expire_due() == 0
    assert remaining(lot) == USD
    # The moment itself is due.
    assert lots_expire_due(now=in_an_hour) == 1
    assert remaining(lot) == 0
    assert_ledger_whole(customer)


def test_a_partly_spent_lot_expires_only_the_remainder(customer):
    in_an_hour = timezone.now() + timedelta(hours=1)
    lot = lot_of(grant(customer, 10 * USD, expires_at=in_an_hour))
    grant(customer, 5 * USD, LotSource.ADJUSTMENT, pool=Pool.TOPUP)
    balance_debit(account=customer, amount_nanos=4 * USD - 3, idempotency_key=new_key())

    assert lots_expire_due(now=in_an_hour) == 1

    [entry] = expiries(customer)
    assert entry.amount_nanos == -6 * USD - 3
    assert remaining(lot) == 0
    assert wallet_of(customer) == (5 * USD, 0, 0)
    assert_ledger_whole(customer)


def test_a_fully_spent_lot_does_not_expire(customer):
    in_an_hour = timezone.now() + timedelta(hours=1)
    grant(customer, 2 * USD, expires_at=in_an_hour)
    balance_debit(account=customer, amount_nanos=2 * USD, idempotency_key=new_key())

    assert lots_expire_due(now=in_an_hour) == 0
    assert expiries(customer) == []
    assert_ledger_whole(customer)


def test_held_credits_are_left_for_a_later_run(customer):
    in_an_hour = timezone.now() + timedelta(hours=1)
    lot = lot_of(grant(customer, 10 * USD, expires_at=in_an_hour))
    hold = hold_place(account=customer, amount_nanos=4 * USD)

    assert lots_expire_due(now=in_an_hour) == 1
    assert remaining(lot) == 4 * USD
    assert wallet_of(customer) == (0, 4 * USD, 4 * USD)
    assert lots_expire_due(now=in_an_hour) == 0

    hold_release(hold_id=hold.id)
    assert lots_expire_due(now=in_an_hour) == 1
    assert [e.amount_nanos for e in expiries(customer)] == [-6 * USD, -4 * USD]
    assert remaining(lot) == 0
    assert wallet_of(customer) == (0, 0, 0)
    assert_ledger_whole(customer)


def test_top_up_bonus_expires_after_bonus_expiry_days(customer):
    topup = topup_credit(
        account=customer,
        amount_nanos=100 * USD,
        idempotency_key=new_key(),
        reference="pi",
    )
    bonus_lot = topup.bonus_lot
    expires_at = topup.topup_entry.created_at + timedelta(
        days=settings.BONUS_EXPIRY_DAYS
    )
    assert bonus_lot.expires_at == expires_at
    assert CreditLot.objects.get(pk=topup.topup_lot.pk).expires_at is None

    assert lots_expire_due(now=expires_at - timedelta(seconds=1)) == 0
    assert lots_expire_due(now=expires_at) == 1
    # The top-up itself never expires.
    assert lots_expire_due(now=expires_at + timedelta(days=10 * 365)) == 0

    [entry] = expiries(customer)
    assert (entry.amount_nanos, entry.bonus_delta_nanos) == (-20 * USD, -20 * USD)
    assert wallet_of(customer) == (100 * USD, 0, 0)
    assert_ledger_whole(customer)


def test_expiry_covers_every_account_and_lot(db):
    in_an_hour = timezone.now() + timedelta(hours=1)
    first, second = new_account(), new_account()
    grant(first, USD, expires_at=in_an_hour)
    grant(first, 2 * USD, LotSource.COMPENSATION, expires_at=in_an_hour)
    grant(second, 3 * USD, LotSource.REFERRAL, expires_at=in_an_hour)
    grant(second, 4 * USD)

    assert lots_expire_due(now=in_an_hour) == 3

    assert sorted(e.amount_nanos for e in expiries(first)) == [-2 * USD, -USD]
    assert [e.amount_nanos for e in expiries(second)] == [-3 * USD]
    assert wallet_of(first) == (0, 0, 0)
    assert wallet_of(second) == (0, 4 * USD, 0)
    assert_ledger_whole(first, second)


@pytest.mark.django_db(transaction=True)
def test_expiry_beside_concurrent_debits_expires_only_what_remains():
    account = new_account()
    in_an_hour = timezone.now() + timedelta(hours=1)
    expiring = [
        lot_of(grant(account, 7 * USD + i, LotSource.GIFT, expires_at=in_an_hour))
        for i in range(6)
    ]
    lot_of(grant(account, 100 * USD, LotSource.ADJUSTMENT, pool=Pool.TOPUP))
    total = 42 * USD + 15 + 100 * USD
    debit = USD + 1

    def spend():
        return balance_debit(
            account=account, amount_nanos=debit, idempotency_key=new_key()
        )

    def expire():
        return lots_expire_due(now=in_an_hour + timedelta(minutes=1))

    jobs = [spend] * 60
    for position in (0, 10, 20, 30, 40, 50):
        jobs.insert(position, expire)
    results = run_concurrently(jobs, workers=12)

    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == []
    # Every lot expired in at most one entry and by exactly what it still had.
    expired = 0
    for lot in expiring:
        moves = list(LotMovement.objects.filter(lot=lot).order_by("id"))
        kinds = [m.entry.kind for m in moves]
        assert kinds.count(EntryKind.EXPIRY) <= 1
        assert sum(m.delta_nanos for m in moves) == 0
        assert remaining(lot) == 0
        expired += sum(m.delta_nanos for m in moves if m.entry.kind == EntryKind.EXPIRY)
    entries = expiries(account)
    assert sum(e.amount_nanos for e in entries) == expired
    assert sum(results[i] for i, job in enumerate(jobs) if job is expire) == len(
        entries
    )
    assert wallet_of(account)[0] + wallet_of(account)[1] == total - 60 * debit + expired
    assert wallet_of(account)[1] == 0
    assert_ledger_whole(account)
