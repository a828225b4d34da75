"""Bad input to the ledger's services: a clear BillingError that names the
problem, and nothing written."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.errors import BillingError, InsufficientCredits, InvalidAmount
from billing.ledger.debits import balance_debit
from billing.ledger.grants import credit_grant, topup_credit
from billing.ledger.holds import hold_place, hold_settle
from billing.ledger.reversals import entry_reverse
from billing.models import LotSource, Pool
from money import MAX_NANOS
from tests.support.ledger import USD, assert_ledger_whole, counts, wallet_of
from tests.support.world import grant, new_key

NOT_INTS = [
    (1.5, "not float"),
    (1.0, "not float"),
    (True, "not bool"),
    (False, "not bool"),
    (Decimal("1"), "not Decimal"),
    ("1000", "not str"),
    (None, "not NoneType"),
]


def refused(error, match, call):
    """``call()`` raises ``error`` matching ``match`` and writes nothing."""
    before = counts()
    with pytest.raises(error, match=match) as raised:
        call()
    assert counts() == before
    return raised.value


def do_grant(account, amount, source=LotSource.GIFT, **kwargs):
    arguments = {
        "account": account,
        "source": source,
        "amount_nanos": amount,
        "reason": "goodwill",
        "actor": None,
        "idempotency_key": new_key(),
    }
    arguments.update(kwargs)
    return lambda: credit_grant(**arguments)


def do_topup(account, amount):
    return lambda: topup_credit(
        account=account, amount_nanos=amount, idempotency_key=new_key(), reference="pi"
    )


def do_debit(account, amount, **kwargs):
    return lambda: balance_debit(
        account=account, amount_nanos=amount, idempotency_key=new_key(), **kwargs
    )


def do_hold(account, amount):
    return lambda: hold_place(account=account, amount_nanos=amount)


@pytest.fixture
def calls(alice):
    """Each money-taking service, as a function of the amount."""
    account = alice.account
    return {
        "gift": lambda amount: do_grant(account, amount, LotSource.GIFT),
        "referral": lambda amount: do_grant(account, amount, LotSource.REFERRAL),
        "compensation": lambda amount: do_grant(
            account, amount, LotSource.COMPENSATION
        ),
        "adjustment": lambda amount: do_grant(account, amount, LotSource.ADJUSTMENT),
        "topup": lambda amount: do_topup(account, amount),
        "debit": lambda amount: do_debit(account, amount),
        "hold": lambda amount: do_hold(account, amount),
    }


ALL = ["gift", "referral", "compensation", "adjustment", "topup", "debit", "hold"]
CREDITS_ONLY = ["gift", "referral", "compensation", "topup", "debit", "hold"]


@pytest.mark.parametrize("service", ALL)
def test_zero_amount_is_refused(calls, service):
    refused(InvalidAmount, "must not be zero", calls[service](0))


@pytest.mark.parametrize("service", CREDITS_ONLY)
@pytest.mark.parametrize("amount", [-1, -5 * USD])
def test_negative_amount_is_refused_where_only_positive_makes_sense(
    calls, service, amount
):
    refused(InvalidAmount, "must be positive", calls[service](amount))


@pytest.mark.parametrize("service", ALL)
@pytest.mark.parametrize(("amount", "match"), NOT_INTS)
def test_amount_that_is_not_an_int_is_refused(calls, service, amount, match):
    refused(InvalidAmount, f"whole nano-USD integers, {match}", calls[service](amount))


@pytest.mark.parametrize("service", ALL)
@pytest.mark.parametrize("amount", [MAX_NANOS + 1, 2**64, 10**30])
def test_amount_beyond_bigint_is_refused(calls, service, amount):
    refused(InvalidAmount, "larger than an account can hold", calls[service](amount))


@pytest.mark.parametrize("amount", [-(MAX_NANOS + 1), -(2**64)])
def test_negative_adjustment_beyond_bigint_is_refused(calls, amount):
    refused(
        InvalidAmount, "larger than an account can hold", calls["adjustment"](amount)
    )


@pytest.mark.parametrize(("amount", "match"), [(-1, "must be positive"), *NOT_INTS])
def test_bad_settle_cost_is_refused(alice, amount, match):
    hold = hold_place(account=alice.account, amount_nanos=USD)
    refused(
        InvalidAmount, match, lambda: hold_settle(hold_id=hold.id, cost_nanos=amount)
    )
    assert wallet_of(alice.account) == (0, 50 * USD, USD)


@pytest.mark.parametrize("source", ["cash", "", "GIFT", "expiry", None])
def test_unknown_source_is_refused(alice, source):
    refused(InvalidAmount, "unknown source", do_grant(alice.account, USD, source))


@pytest.mark.parametrize("source", [LotSource.TOPUP, LotSource.BONUS])
def test_top_up_credits_are_not_granted_by_hand(alice, source):
    refused(InvalidAmount, "not granted by hand", do_grant(alice.account, USD, source))


@pytest.mark.parametrize("pool", ["gold", "TOPUP", "top-up"])
def test_unknown_pool_is_refused(alice, pool):
    refused(
        InvalidAmount,
        "unknown pool",
        do_grant(alice.account, USD, LotSource.ADJUSTMENT, pool=pool),
    )
    refused(InvalidAmount, "unknown pool", do_debit(alice.account, USD, pool=pool))


@pytest.mark.parametrize("kind", ["spend", "", "USAGE"])
def test_unknown_debit_kind_is_refused(alice, kind):
    refused(InvalidAmount, "unknown kind", do_debit(alice.account, USD, kind=kind))


@pytest.mark.parametrize("kind", ["topup", "bonus", "expiry"])
def test_credit_kinds_are_never_debits(alice, kind):
    refused(InvalidAmount, "never a debit", do_debit(alice.account, USD, kind=kind))


@pytest.mark.parametrize(
    "source", [LotSource.GIFT, LotSource.REFERRAL, LotSource.COMPENSATION]
)
def test_only_an_adjustment_goes_to_the_top_up_pool(alice, source):
    refused(
        InvalidAmount,
        "only an adjustment may go to the top-up pool",
        do_grant(alice.account, USD, source, pool=Pool.TOPUP),
    )


def test_negative_adjustment_below_zero_is_refused(alice):
    account = alice.account  # $50 of bonus, no top-up credits
    error = refused(
        InsufficientCredits,
        "insufficient credits",
        do_grant(account, -50 * USD - 1, LotSource.ADJUSTMENT),
    )
    assert (error.available_nanos, error.needed_nanos) == (50 * USD, 50 * USD + 1)
    error = refused(
        InsufficientCredits,
        "insufficient credits",
        do_grant(account, -1, LotSource.ADJUSTMENT, pool=Pool.TOPUP),
    )
    assert (error.available_nanos, error.needed_nanos) == (0, 1)
    assert_ledger_whole(account)


def test_negative_adjustment_cannot_take_held_credits(alice):
    hold_place(account=alice.account, amount_nanos=45 * USD)
    error = refused(
        InsufficientCredits,
        "insufficient credits",
        do_grant(alice.account, -6 * USD, LotSource.ADJUSTMENT),
    )
    assert error.available_nanos == 5 * USD


def test_negative_adjustment_cannot_expire(alice):
    refused(
        InvalidAmount,
        "cannot expire",
        do_grant(
            alice.account,
            -USD,
            LotSource.ADJUSTMENT,
            expires_at=timezone.now() + timedelta(days=1),
        ),
    )


def test_grant_that_would_overflow_the_wallet_is_refused(customer):
    grant(customer, MAX_NANOS - 10)
    refused(InvalidAmount, "would exceed", do_grant(customer, 11))
    refused(
        InvalidAmount,
        "would exceed",
        do_grant(customer, 11, LotSource.ADJUSTMENT, pool=Pool.TOPUP),
    )
    # Exactly up to the limit is fine.
    grant(customer, 10)
    assert wallet_of(customer) == (0, MAX_NANOS, 0)
    assert_ledger_whole(customer)


def test_top_up_whose_bonus_would_overflow_writes_nothing(customer):
    # The top-up lot itself fits; its 20% bonus does not: neither is written.
    grant(customer, MAX_NANOS - 100)
    refused(InvalidAmount, "would exceed", do_topup(customer, 90))
    assert wallet_of(customer) == (0, MAX_NANOS - 100, 0)
    assert_ledger_whole(customer)


def test_reversal_that_would_overflow_the_wallet_is_refused(customer):
    grant(customer, 10)
    usage = balance_debit(account=customer, amount_nanos=10, idempotency_key=new_key())
    grant(customer, MAX_NANOS)
    # Giving the 10 nanos back would take the total past the bigint range: a
    # clear BillingError, not a database error from deep inside.
    refused(
        BillingError,
        "exceed",
        lambda: entry_reverse(entry=usage.entry, actor=None, reason="mistake"),
    )
    assert_ledger_whole(customer)


def test_expiry_in_the_past_is_refused(alice):
    for moment in (timezone.now() - timedelta(seconds=1), timezone.now()):
        refused(
            InvalidAmount,
            "expiry must be in the future",
            do_grant(alice.account, USD, expires_at=moment),
        )


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_grant_without_a_reason_is_refused(alice, reason):
    refused(
        InvalidAmount, "reason is required", do_grant(alice.account, USD, reason=reason)
    )


def test_grant_and_top_up_without_an_idempotency_key_are_refused(alice):
    refused(
        InvalidAmount,
        "idempotency key is required",
        do_grant(alice.account, USD, idempotency_key=""),
    )
    refused(
        InvalidAmount,
        "idempotency key is required",
        lambda: topup_credit(
            account=alice.account, amount_nanos=USD, idempotency_key="", reference="pi"
        ),
    )


def test_debit_without_an_idempotency_key_is_refused(alice):
    # Like a grant: with an empty key, every later debit of the same amount
    # would silently "replay" the first one instead of charging.
    refused(
        InvalidAmount,
        "idempotency key is required",
        lambda: balance_debit(
            account=alice.account, amount_nanos=USD, idempotency_key=""
        ),
    )


def test_insufficient_credits_names_both_amounts(customer):
    grant(customer, 3 * USD)
    error = refused(
        InsufficientCredits, "insufficient credits", do_debit(customer, 5 * USD)
    )
    assert (
        str(error)
        == "insufficient credits: $3.000000000 available, $5.000000000 needed"
    )
    assert (error.available_nanos, error.needed_nanos) == (3 * USD, 5 * USD)
    error = refused(
        InsufficientCredits, "insufficient credits", do_hold(customer, 5 * USD)
    )
    assert (
        str(error)
        == "insufficient credits: $3.000000000 available, $5.000000000 needed"
    )


def test_insufficient_credits_on_an_empty_wallet_reads_plainly(customer):
    error = refused(InsufficientCredits, "insufficient credits", do_debit(customer, 1))
    assert (
        str(error)
        == "insufficient credits: $0.000000000 available, $0.000000001 needed"
    )
