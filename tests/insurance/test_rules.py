"""Each coverage rule, judged on real request logs of yesterday: what it
covers, what it does not, one payout for a request several rules match, and a
model's own rule replacing the default."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from insurance.coverage import RuleBook
from insurance.models import CoverageRule, Payout, RuleKind
from insurance.scan import covered_on, day_bounds
from insurance.selectors import rule_book
from insurance.services import insurance_day_pay
from tests.support.keys import make_key, make_log

COST = 325_000


@pytest.fixture
def day():
    return timezone.now().date() - timedelta(days=1)


@pytest.fixture
def key(alice):
    return make_key(alice)


def at(day, hour=12):
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(
        hours=hour
    )


def covered_kinds(day) -> dict[str, str]:
    """{request id: rule kind} of the day's covered requests."""
    return {
        str(item.log.id): item.rule.kind
        for items in covered_on(day=day, book=rule_book()).values()
        for item in items
    }


def test_the_shipped_defaults_are_one_rule_per_kind_for_every_model(db):
    rules = {rule.kind: rule for rule in CoverageRule.objects.filter(model="")}
    assert set(rules) == set(RuleKind.values)
    assert all(rule.enabled and rule.payout_percent == 100 for rule in rules.values())
    assert rules[RuleKind.HIGH_LATENCY].ttft_ms == 60_000
    assert rules[RuleKind.HIGH_LATENCY].latency_ms == 600_000
    assert rules[RuleKind.TRUNCATED_OUTPUT].truncated_percent == 10


def test_an_ordinary_request_is_not_covered(key, day):
    make_log(key, at=at(day), finish_reason="stop")
    assert covered_kinds(day) == {}


def test_a_stream_cut_off_upstream_after_output_began_is_covered(key, day):
    broken = make_log(
        key,
        at=at(day),
        streamed=True,
        status=502,
        error="the upstream provider's stream broke off",
        ttft_ms=300,
    )
    # Broke before any output: nothing was delivered, nothing billed here.
    make_log(
        key, at=at(day), streamed=True, status=502, ttft_ms=None, completion_tokens=0
    )
    # Not streamed: an upstream error answered whole is not this rule.
    make_log(key, at=at(day), streamed=False, status=502, ttft_ms=None)
    assert covered_kinds(day) == {str(broken.id): RuleKind.STREAM_FAILURE}


def test_a_client_that_went_away_is_never_covered(key, day):
    make_log(
        key,
        at=at(day),
        streamed=True,
        status=499,
        cancelled=True,
        error="client closed the stream",
        ttft_ms=400_000,
        latency_ms=900_000,
    )
    assert covered_kinds(day) == {}


def test_an_answer_without_visible_output_is_covered_unless_a_tool_call(key, day):
    empty = make_log(key, at=at(day), completion_tokens=0, finish_reason="stop")
    only_reasoning = make_log(
        key, at=at(day), completion_tokens=50, reasoning_tokens=50, finish_reason="stop"
    )
    make_log(key, at=at(day), completion_tokens=0, finish_reason="tool_calls")
    make_log(
        key, at=at(day), endpoint="embeddings", completion_tokens=0, finish_reason=""
    )
    assert covered_kinds(day) == {
        str(empty.id): RuleKind.EMPTY_OUTPUT,
        str(only_reasoning.id): RuleKind.EMPTY_OUTPUT,
    }


def test_an_answer_cut_for_length_well_below_its_max_tokens_is_covered(key, day):
    # 99 < 10% of 1000: cut by the provider, not by the customer's limit.
    cut = make_log(
        key, at=at(day), finish_reason="length", max_tokens=1000, completion_tokens=99
    )
    # 100 is not below 10% of 1000; the limit reached is what was asked for.
    make_log(
        key, at=at(day), finish_reason="length", max_tokens=1000, completion_tokens=100
    )
    make_log(
        key, at=at(day), finish_reason="length", max_tokens=1000, completion_tokens=1000
    )
    # No max_tokens: the model's own maximum, not judged.
    make_log(
        key, at=at(day), finish_reason="length", max_tokens=None, completion_tokens=5
    )
    assert covered_kinds(day) == {str(cut.id): RuleKind.TRUNCATED_OUTPUT}


def test_a_slow_first_token_or_a_slow_request_is_covered(key, day):
    slow_start = make_log(
        key, at=at(day), streamed=True, ttft_ms=60_001, latency_ms=70_000
    )
    slow_whole = make_log(key, at=at(day), ttft_ms=None, latency_ms=600_001)
    make_log(key, at=at(day), streamed=True, ttft_ms=60_000, latency_ms=600_000)
    # Slow but failed (and nothing billed as output): not high latency.
    make_log(key, at=at(day), status=504, ttft_ms=None, latency_ms=700_000)
    assert covered_kinds(day) == {
        str(slow_start.id): RuleKind.HIGH_LATENCY,
        str(slow_whole.id): RuleKind.HIGH_LATENCY,
    }


def test_requests_of_other_days_and_free_requests_are_not_covered(key, day):
    start, end = day_bounds(day)
    make_log(key, at=start - timedelta(microseconds=1), completion_tokens=0)
    make_log(key, at=end, completion_tokens=0)
    make_log(key, at=at(day), completion_tokens=0, cost_nanos=0)
    last = make_log(key, at=end - timedelta(microseconds=1), completion_tokens=0)
    first = make_log(key, at=start, completion_tokens=0)
    assert set(covered_kinds(day)) == {str(first.id), str(last.id)}


def test_a_request_several_rules_cover_is_paid_once_by_the_largest_share(
    alice, key, day
):
    CoverageRule.objects.filter(model="", kind=RuleKind.HIGH_LATENCY).update(
        payout_percent=100
    )
    CoverageRule.objects.filter(model="", kind=RuleKind.EMPTY_OUTPUT).update(
        payout_percent=50
    )
    # Empty and slow: high latency pays 100%, empty output 50%.
    log = make_log(key, at=at(day), completion_tokens=0, latency_ms=700_000)
    assert covered_kinds(day) == {str(log.id): RuleKind.HIGH_LATENCY}
    # Equal shares: the first in order (empty output before high latency).
    CoverageRule.objects.filter(model="", kind=RuleKind.EMPTY_OUTPUT).update(
        payout_percent=100
    )
    assert covered_kinds(day) == {str(log.id): RuleKind.EMPTY_OUTPUT}
    insurance_day_pay(day=day)
    payout = Payout.objects.get()
    assert (payout.kind, payout.amount_nanos) == (RuleKind.EMPTY_OUTPUT, COST)


def test_a_models_own_rule_replaces_the_default_of_its_kind(key, day):
    CoverageRule.objects.create(
        model="openai/gpt-5",
        kind=RuleKind.HIGH_LATENCY,
        ttft_ms=1_000,
        payout_percent=30,
    )
    CoverageRule.objects.create(
        model="openai/gpt-5", kind=RuleKind.EMPTY_OUTPUT, enabled=False
    )
    fast_enough_elsewhere = make_log(
        key, at=at(day), model="openai/gpt-5", streamed=True, ttft_ms=1_001
    )
    make_log(key, at=at(day), model="other/model", streamed=True, ttft_ms=1_001)
    make_log(key, at=at(day), model="openai/gpt-5", completion_tokens=0)
    other_empty = make_log(key, at=at(day), model="other/model", completion_tokens=0)
    assert covered_kinds(day) == {
        str(fast_enough_elsewhere.id): RuleKind.HIGH_LATENCY,
        str(other_empty.id): RuleKind.EMPTY_OUTPUT,
    }
    insurance_day_pay(day=day)
    assert Payout.objects.get(request_id=fast_enough_elsewhere.id).amount_nanos == (
        COST * 30 // 100
    )


def test_no_rule_enabled_covers_nothing(key, day):
    CoverageRule.objects.update(enabled=False)
    make_log(key, at=at(day), completion_tokens=0)
    assert RuleBook(CoverageRule.objects.all()).candidates_q() is None
    assert covered_kinds(day) == {}
