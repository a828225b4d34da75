"""A referee's paid top-ups earn the referrer $5 each, once, through the real
top-up path against localstripe; a refund or dispute of that top-up revokes
its reward by what remains of it; the monthly cap and the same card refuse
one, with the reason."""

from __future__ import annotations

import pytest

from billing.ledger.debits import balance_debit
from billing.ledger.reconciliation import ledger_check
from billing.ledger.selectors import balance_get, breakdown_get
from billing.models import EntryKind, LedgerEntry, LotSource, Pool, TopUp
from billing.payments import stripe_gateway as gateway
from billing.payments.refunds import topup_refund
from referrals.models import (
    Referral,
    ReferralReward,
    RefusalReason,
    RewardStatus,
)
from referrals.services import referral_reward_earn, referral_rewards_sweep
from tests.support.ledger import USD
from tests.support.payments import VISA, VISA_DEBIT, with_profile
from tests.support.referrals import (
    code_of,
    dispute_opened,
    signup_with,
    succeeded_again,
    top_up,
)
from tests.support.threads import run_concurrently
from tests.support.world import new_key

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def carol(bob):
    """A friend bob referred, ready to pay."""
    return with_profile(signup_with(code_of(bob), "carol@example.com"))


def referral_entries(account) -> list[int]:
    return list(
        LedgerEntry.objects.filter(account=account, kind=EntryKind.REFERRAL)
        .order_by("id")
        .values_list("amount_nanos", flat=True)
    )


def test_a_referees_paid_top_up_earns_5_dollars_once(
    bob, carol, card_save, stripe_webhooks
):
    card = card_save(carol.account, VISA_DEBIT)
    topup = top_up(carol, "20", card)
    # localstripe's own webhook arrives about a second later; and Stripe may
    # deliver the event again, under another id too.
    assert stripe_webhooks.wait_for(_webhook_seen, timeout=6)
    assert succeeded_again(topup, "evt_again_1") == 200
    assert succeeded_again(topup, "evt_again_1") == 200
    assert succeeded_again(topup, "evt_again_2") == 200

    reward = ReferralReward.objects.get()
    assert (reward.status, reward.amount_nanos, reward.topup) == (
        RewardStatus.EARNED,
        5 * USD,
        topup,
    )
    assert referral_entries(bob.account) == [5 * USD]
    entry = reward.entry
    assert (entry.kind, entry.method, entry.bonus_delta_nanos) == (
        EntryKind.REFERRAL,
        "Referral program",
        5 * USD,
    )
    assert entry.idempotency_key == f"referral:topup:{topup.pk}"
    balance = balance_get(account=bob.account)
    assert (balance.topup_nanos, balance.bonus_nanos) == (0, 5 * USD)
    assert breakdown_get(account=bob.account)["referrals"] == 5 * USD
    # The referee's own credits are untouched: $20 and its $4 bonus.
    assert balance_get(account=carol.account).total_nanos == 24 * USD
    # The task again, and the sweep: still once.
    assert referral_reward_earn(topup_id=topup.pk) == reward
    assert referral_rewards_sweep() == 0
    assert referral_entries(bob.account) == [5 * USD]
    assert ledger_check() == []


def _webhook_seen() -> bool:
    from djstripe.models import Event

    return Event.objects.filter(type="payment_intent.succeeded").exists()


def test_each_top_up_earns_its_own_reward(bob, carol, card_save, stripe_settings):
    card = card_save(carol.account, VISA_DEBIT)
    for amount in ("10", "25", "5"):
        top_up(carol, amount, card)
    assert referral_entries(bob.account) == [5 * USD] * 3
    assert ReferralReward.objects.filter(status=RewardStatus.EARNED).count() == 3
    assert ledger_check() == []


def test_a_top_up_of_someone_not_referred_earns_nothing(
    bob, alice, card_save, stripe_settings
):
    with_profile(alice)
    top_up(alice, "20", card_save(alice.account, VISA_DEBIT))
    assert not ReferralReward.objects.exists()
    assert referral_entries(bob.account) == []


def test_a_refund_revokes_the_reward_by_what_remains_never_below_zero(
    bob, carol, ops, card_save, stripe_settings
):
    topup = top_up(carol, "20", card_save(carol.account, VISA_DEBIT))
    # Bob spends $3 of his $5 reward.
    balance_debit(account=bob.account, amount_nanos=3 * USD, idempotency_key=new_key())

    topup_refund(topup=topup, amount_nanos=5 * USD, reason="asked", actor=ops)

    reward = ReferralReward.objects.get()
    assert reward.status == RewardStatus.REVOKED
    assert (reward.amount_nanos, reward.revoked_nanos) == (5 * USD, 2 * USD)
    assert reward.revoked_by.startswith("refund re_")
    revocation = reward.revocation_entry
    assert (revocation.kind, revocation.amount_nanos) == (EntryKind.REFERRAL, -2 * USD)
    assert revocation.reverses == reward.entry
    assert balance_get(account=bob.account).total_nanos == 0
    assert breakdown_get(account=bob.account)["referrals"] == 3 * USD

    # A second, partial refund of the same order revokes nothing more.
    topup_refund(
        topup=TopUp.objects.get(pk=topup.pk),
        amount_nanos=5 * USD,
        reason="more",
        actor=ops,
    )
    assert referral_entries(bob.account) == [5 * USD, -2 * USD]
    assert ledger_check() == []


def test_an_unspent_reward_is_revoked_whole_by_a_partial_refund(
    bob, carol, ops, card_save, stripe_settings
):
    topup = top_up(carol, "100", card_save(carol.account, VISA_DEBIT))
    topup_refund(topup=topup, amount_nanos=1 * USD, reason="part", actor=ops)
    assert referral_entries(bob.account) == [5 * USD, -5 * USD]
    assert balance_get(account=bob.account).total_nanos == 0
    assert ledger_check() == []


def test_a_dispute_revokes_the_reward_once(bob, carol, card_save, stripe_settings):
    topup = top_up(carol, "20", card_save(carol.account, VISA_DEBIT))
    assert dispute_opened(topup, "dp_ref_1") == 200
    assert dispute_opened(topup, "dp_ref_1") == 200  # redelivered

    reward = ReferralReward.objects.get()
    assert (reward.status, reward.revoked_nanos) == (RewardStatus.REVOKED, 5 * USD)
    assert reward.revoked_by == "dispute dp_ref_1"
    assert referral_entries(bob.account) == [5 * USD, -5 * USD]
    assert balance_get(account=bob.account).total_nanos == 0
    assert ledger_check() == []


def test_a_top_up_refunded_before_its_reward_never_earns_one(
    bob, ops, card_save, stripe_settings
):
    # Paid before dave was referred: no reward was queued for it.
    dave = with_profile(signup_with(None, "dave@example.com"))
    topup = top_up(dave, "20", card_save(dave.account, VISA_DEBIT))
    Referral.objects.create(referrer=bob.account, referee=dave.account, code="x")

    topup_refund(topup=topup, amount_nanos=20 * USD, reason="asked", actor=ops)

    reward = ReferralReward.objects.get(topup=topup)
    assert (reward.status, reward.refused_reason) == (
        RewardStatus.REFUSED,
        RefusalReason.REVERSED,
    )
    assert referral_reward_earn(topup_id=topup.pk) == reward
    assert referral_rewards_sweep() == 0
    assert referral_entries(bob.account) == []
    assert ledger_check() == []


def test_referral_credits_are_never_paid_back_as_money(
    bob, carol, ops, card_save, stripe_settings
):
    from billing.payments.refunds import refundable_nanos

    top_up(carol, "20", card_save(carol.account, VISA_DEBIT))
    # Bob's only credits are his reward, in the bonus pool: no top-up of his
    # could refund them, and the pool is not the one refunds take from.
    lot = LedgerEntry.objects.get(account=bob.account, kind=EntryKind.REFERRAL)
    assert lot.bonus_delta_nanos == 5 * USD and lot.topup_delta_nanos == 0
    assert not TopUp.objects.filter(account=bob.account).exists()
    from billing.models import CreditLot

    reward_lot = CreditLot.objects.get(entry=lot)
    assert (reward_lot.source, reward_lot.pool) == (LotSource.REFERRAL, Pool.BONUS)
    carol_topup = TopUp.objects.get(account=carol.account)
    assert refundable_nanos(carol_topup) == 20 * USD  # carol's own, not bob's


def test_the_monthly_cap_pays_up_to_it_then_refuses(
    bob, carol, card_save, stripe_settings, settings
):
    settings.REFERRAL_MONTHLY_CAP_NANOS = 12 * USD
    card = card_save(carol.account, VISA_DEBIT)
    for _ in range(4):
        top_up(carol, "5", card)

    rewards = ReferralReward.objects.order_by("id")
    assert [(r.status, r.amount_nanos) for r in rewards] == [
        (RewardStatus.EARNED, 5 * USD),
        (RewardStatus.EARNED, 5 * USD),
        (RewardStatus.EARNED, 2 * USD),
        (RewardStatus.REFUSED, 0),
    ]
    assert rewards.last().refused_reason == RefusalReason.MONTHLY_CAP
    assert balance_get(account=bob.account).bonus_nanos == 12 * USD
    assert ledger_check() == []


def test_a_revoked_reward_still_counts_against_its_month(
    bob, carol, ops, card_save, stripe_settings, settings
):
    settings.REFERRAL_MONTHLY_CAP_NANOS = 5 * USD
    card = card_save(carol.account, VISA_DEBIT)
    first = top_up(carol, "5", card)
    topup_refund(topup=first, amount_nanos=5 * USD, reason="asked", actor=ops)
    top_up(carol, "5", card)
    assert [r.status for r in ReferralReward.objects.order_by("id")] == [
        RewardStatus.REVOKED,
        RewardStatus.REFUSED,
    ]


def test_the_cap_holds_when_referees_pay_at_once(
    bob, card_save, stripe_settings, settings
):
    # Paid before they were referred: their rewards are earned by the sweep's
    # service below, all at once.
    friends = [
        with_profile(signup_with(None, f"friend{i}@example.com")) for i in range(4)
    ]
    topups = [
        top_up(friend, "5", card_save(friend.account, VISA_DEBIT)) for friend in friends
    ]
    Referral.objects.bulk_create(
        Referral(referrer=bob.account, referee=friend.account, code=code_of(bob))
        for friend in friends
    )
    settings.REFERRAL_MONTHLY_CAP_NANOS = 10 * USD

    results = run_concurrently(
        [
            lambda topup_id=topup.pk: referral_reward_earn(topup_id=topup_id)
            for topup in topups
            for _ in range(3)
        ],
        workers=6,
    )

    assert not [r for r in results if isinstance(r, Exception)]
    rewards = ReferralReward.objects.all()
    assert rewards.count() == 4
    assert sorted(r.status for r in rewards) == [
        RewardStatus.EARNED,
        RewardStatus.EARNED,
        RewardStatus.REFUSED,
        RewardStatus.REFUSED,
    ]
    assert referral_entries(bob.account) == [5 * USD, 5 * USD]
    assert ledger_check() == []


def test_a_card_the_referrer_saved_refuses_the_reward(
    bob, carol, card_save, stripe_settings, client, ops
):
    card_save(bob.account, VISA)
    top_up(carol, "20", card_save(carol.account, VISA))

    reward = ReferralReward.objects.get()
    assert (reward.status, reward.refused_reason) == (
        RewardStatus.REFUSED,
        RefusalReason.SAME_CARD,
    )
    assert referral_entries(bob.account) == []
    # Operators see why.
    client.force_login(ops)
    page = client.get("/admin/referrals/refusedreward/")
    assert page.status_code == 200
    assert "Paid with a card the referrer uses" in page.content.decode()


def test_a_card_the_referrer_paid_with_and_removed_still_refuses(
    bob, carol, card_save, stripe_settings
):
    with_profile(bob)
    mine = card_save(bob.account, VISA)
    top_up(bob, "5", mine)
    gateway.card_detach(account=bob.account, payment_method_id=mine.id)
    assert gateway.card_fingerprints(account=bob.account) == set()

    top_up(carol, "20", card_save(carol.account, VISA))

    assert ReferralReward.objects.get().refused_reason == RefusalReason.SAME_CARD


def test_another_card_earns(bob, carol, card_save, stripe_settings):
    card_save(bob.account, VISA)
    top_up(carol, "20", card_save(carol.account, VISA_DEBIT))
    assert ReferralReward.objects.get().status == RewardStatus.EARNED


def test_the_sweep_rewards_a_top_up_whose_task_was_lost(
    bob, card_save, stripe_settings
):
    dave = with_profile(signup_with(None, "dave@example.com"))
    topup = top_up(dave, "20", card_save(dave.account, VISA_DEBIT))
    Referral.objects.create(
        referrer=bob.account, referee=dave.account, code=code_of(bob)
    )

    assert referral_rewards_sweep() == 1
    assert referral_rewards_sweep() == 0
    assert ReferralReward.objects.get().topup == topup
    assert referral_entries(bob.account) == [5 * USD]
    assert ledger_check() == []
