"""The daily payout: yesterday's covered requests paid as one compensation
lot per account, in the bonus pool, expiring by its own setting, shown as AI
insurance in the history with its requests behind it; run twice (or twice at
once) it pays once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from billing.ledger.selectors import breakdown_get, transactions_list
from billing.models import CreditLot, EntryKind, LedgerEntry, LotSource, Pool
from insurance.models import CoverageRule, Payout, RuleKind
from insurance.selectors import insurance_summary, payouts_list
from insurance.services import insurance_day_pay
from insurance.tasks import insurance_pay_yesterday
from tests.support.keys import make_key, make_log
from tests.support.ledger import USD, assert_ledger_whole, wallet_of
from tests.support.threads import run_concurrently


@pytest.fixture
def day():
    return timezone.now().date() - timedelta(days=1)


def at(day, hour=12):
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(
        hours=hour
    )


def covered_logs(user, day):
    """Three covered requests (1,000,001 + 2,000,003 + 777 nanos) and one
    that is not."""
    key = make_key(user)
    return [
        make_log(key, at=at(day, 1), completion_tokens=0, cost_nanos=1_000_001),
        make_log(
            key,
            at=at(day, 2),
            streamed=True,
            status=502,
            ttft_ms=200,
            cost_nanos=2_000_003,
        ),
        make_log(key, at=at(day, 3), latency_ms=650_000, cost_nanos=777),
        make_log(key, at=at(day, 4), cost_nanos=5_000_000),
    ]


def insurance_entries(account):
    return LedgerEntry.objects.filter(account=account, kind=EntryKind.COMPENSATION)


def test_the_task_pays_yesterday_once_per_account_and_once_when_run_twice(
    alice, bob, day
):
    covered_logs(alice, day)
    covered_logs(bob, day)
    before = wallet_of(alice.account)

    assert insurance_pay_yesterday.delay().get() == 2
    assert insurance_pay_yesterday.delay().get() == 0
    assert insurance_pay_yesterday.delay(day.isoformat()).get() == 0

    for user in (alice, bob):
        (entry,) = insurance_entries(user.account)
        assert entry.amount_nanos == 1_000_001 + 2_000_003 + 777
        assert entry.bonus_delta_nanos == entry.amount_nanos
        assert entry.idempotency_key == f"insurance:{day.isoformat()}"
        assert entry.method == "AI insurance"
        assert entry.description == f"AI insurance: 3 covered requests on {day}"
        lot = CreditLot.objects.get(entry=entry)
        assert (lot.source, lot.pool) == (LotSource.COMPENSATION, Pool.BONUS)
        assert Payout.objects.filter(entry=entry).count() == 3
    assert wallet_of(alice.account) == (
        before[0],
        before[1] + 3_000_781,
        before[2],
    )
    assert breakdown_get(account=alice.account)["compensations"] == 3_000_781
    assert_ledger_whole(alice.account, bob.account)


def test_each_day_is_its_own_lot(alice, day):
    covered_logs(alice, day)
    covered_logs(alice, day - timedelta(days=1))
    insurance_day_pay(day=day - timedelta(days=1))
    insurance_day_pay(day=day)
    insurance_day_pay(day=day)
    entries = insurance_entries(alice.account).order_by("id")
    assert [e.idempotency_key for e in entries] == [
        f"insurance:{day - timedelta(days=1)}",
        f"insurance:{day}",
    ]
    assert [e.amount_nanos for e in entries] == [3_000_781, 3_000_781]
    assert_ledger_whole(alice.account)


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_pay_once(alice, day):
    covered_logs(alice, day)
    results = run_concurrently(
        [lambda: len(insurance_day_pay(day=day)) for _ in range(4)], workers=4
    )
    assert sorted(results) == [0, 0, 0, 1]
    assert insurance_entries(alice.account).get().amount_nanos == 3_000_781
    assert Payout.objects.count() == 3
    assert_ledger_whole(alice.account)


def test_the_lot_expires_after_its_setting_or_never(alice, day, settings):
    covered_logs(alice, day)
    settings.INSURANCE_COMPENSATION_EXPIRY_DAYS = 30
    before = timezone.now()
    insurance_day_pay(day=day)
    lot = CreditLot.objects.get(entry=insurance_entries(alice.account).get())
    assert (
        before + timedelta(days=30)
        <= lot.expires_at
        <= timezone.now() + timedelta(days=30)
    )

    covered_logs(alice, day - timedelta(days=1))
    settings.INSURANCE_COMPENSATION_EXPIRY_DAYS = 0
    insurance_day_pay(day=day - timedelta(days=1))
    entry = insurance_entries(alice.account).order_by("-id").first()
    assert CreditLot.objects.get(entry=entry).expires_at is None


def test_the_history_row_and_the_requests_behind_it(alice, day):
    logs = covered_logs(alice, day)
    (entry,) = insurance_day_pay(day=day)
    row = next(
        tx
        for tx in transactions_list(account=alice.account)[:10]
        if tx.id == str(entry.id)
    )
    assert (row.kind, row.method_label, row.amount_nanos) == (
        "compensation",
        "AI insurance",
        3_000_781,
    )
    behind = payouts_list(account=alice.account, entry_id=entry.id)
    assert [p.request_id for p in behind] == [logs[2].id, logs[1].id, logs[0].id]
    assert [(p.kind, p.amount_nanos) for p in behind] == [
        (RuleKind.HIGH_LATENCY, 777),
        (RuleKind.STREAM_FAILURE, 2_000_003),
        (RuleKind.EMPTY_OUTPUT, 1_000_001),
    ]


def test_the_summary_by_rule_and_by_model(alice, day):
    covered_logs(alice, day)
    key = make_key(alice)
    make_log(key, at=at(day), model="x/small", completion_tokens=0, cost_nanos=2 * USD)
    insurance_day_pay(day=day)
    summary = insurance_summary(account=alice.account)
    total = 3_000_781 + 2 * USD
    assert (summary.total_nanos, summary.count, summary.average_nanos) == (
        total,
        4,
        total // 4,
    )
    assert [(g.key, g.count, g.total_nanos) for g in summary.by_rule] == [
        (RuleKind.EMPTY_OUTPUT, 2, 2 * USD + 1_000_001),
        (RuleKind.STREAM_FAILURE, 1, 2_000_003),
        (RuleKind.HIGH_LATENCY, 1, 777),
    ]
    assert [(g.key, g.count, g.total_nanos) for g in summary.by_model] == [
        ("x/small", 1, 2 * USD),
        ("openai/gpt-5", 3, 3_000_781),
    ]


def test_a_share_rounds_down_to_a_whole_nano(alice, day):
    CoverageRule.objects.filter(model="", kind=RuleKind.EMPTY_OUTPUT).update(
        payout_percent=33
    )
    key = make_key(alice)
    make_log(key, at=at(day), completion_tokens=0, cost_nanos=1_000)
    make_log(key, at=at(day), completion_tokens=0, cost_nanos=2)  # 0.66: nothing
    (entry,) = insurance_day_pay(day=day)
    assert entry.amount_nanos == 330
    assert Payout.objects.count() == 1
    assert_ledger_whole(alice.account)


def test_a_day_whose_run_was_missed_is_paid_by_the_next_run(alice, day):
    """The worker was down at 01:15 the day before: today's run pays the day
    before yesterday too, and yesterday, each once; older days are left."""
    for back in (1, 2, 3, 4):
        make_log(
            make_key(alice),
            at=at(day - timedelta(days=back - 1)),
            completion_tokens=0,
            cost_nanos=1_000 * back,
        )
    assert insurance_pay_yesterday.delay().get() == 3
    assert insurance_pay_yesterday.delay().get() == 0
    paid = sorted(e.amount_nanos for e in insurance_entries(alice.account))
    assert paid == [1_000, 2_000, 3_000]  # four days back is past catching up
    assert_ledger_whole()
