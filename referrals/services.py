"""The referral program's writes: codes, referrals recorded at signup, and a
reward per top-up a referee pays, revoked if that top-up's money goes back.

The rules, written down once:

- A referral is recorded when someone signs up with a code: one per referee,
  refused (kept, with the reason, earning nothing) when the referee is the
  referrer — the same account, or the same mailbox (``rules.email_normalised``:
  ``+tags``, and dots and googlemail.com on Gmail).
- A referrer earns ``REFERRAL_REWARD_USD`` of referral credits (bonus pool) for
  each credits top-up its referee pays, once per top-up (the grant's
  idempotency key and ``ReferralReward.topup`` are both the top-up's).
- Refused, with the reason, when the referee paid with a card whose Stripe
  fingerprint is that of a card the referrer saved or paid a top-up with; when
  the top-up was refunded or disputed before the reward; and past the monthly
  cap: the rewards granted to a referrer in a calendar month (UTC) never sum
  above ``REFERRAL_MONTHLY_CAP_USD`` (the last one pays what is left under it).
  A revoked reward still counts against its month: refunding an order does
  not make room for another.
- Any refund or dispute of the order revokes its whole reward, once: what
  remains of the reward's lot is taken back (``grant_revoke``), never more, so
  no balance goes below zero; what the referrer spent already stays spent. A
  revocation is final, even when a dispute is later won or a self-service
  refund fails.
- Referral credits are bonus-pool credits: refunds pay back top-up credits
  only, so they are never refunded as money.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import Account
from billing.errors import BillingError
from billing.ledger.grants import credit_grant
from billing.ledger.reversals import grant_revoke
from billing.ledger.wallets import wallet_lock
from billing.models import LotSource, TopUp, TopUpPurpose, TopUpStatus
from billing.payments import stripe_gateway as gateway
from money import format_usd
from referrals import rules
from referrals.models import (
    Referral,
    ReferralCode,
    ReferralReward,
    ReferralStatus,
    RefusalReason,
    RewardStatus,
)

logger = logging.getLogger(__name__)

METHOD = "Referral program"
# How many of the referrer's own top-ups' cards are compared (the newest).
REFERRER_TOPUPS_COMPARED = 20


def referral_code_for(*, account: Account) -> ReferralCode:
    """The account's referral code, made on first use, once."""
    found = ReferralCode.objects.filter(account=account).first()
    if found is not None:
        return found
    for _ in range(5):
        try:
            with transaction.atomic():
                return ReferralCode.objects.create(
                    account=account, code=rules.code_new()
                )
        except IntegrityError:
            # Made a moment ago by another request, or (rarely) a code taken.
            found = ReferralCode.objects.filter(account=account).first()
            if found is not None:
                return found
    raise RuntimeError("no free referral code after 5 tries")


@transaction.atomic
def referral_record(*, referee: Account, code: str) -> Referral | None:
    """Record that ``referee`` signed up with ``code``: None for an unknown
    code or a referee referred before; a self-referral is kept, refused."""
    code = rules.code_clean(code)
    if not code:
        return None
    owner = (
        ReferralCode.objects.select_related("account__owner").filter(code=code).first()
    )
    if owner is None:
        return None
    referrer = owner.account
    reason = ""
    if referrer.pk == referee.pk:
        reason = RefusalReason.SELF
    elif rules.email_normalised(referrer.owner.email) == rules.email_normalised(
        referee.owner.email
    ):
        reason = RefusalReason.SAME_EMAIL
    referral, created = Referral.objects.get_or_create(
        referee=referee,
        defaults={
            "referrer": referrer,
            "code": code,
            "status": ReferralStatus.REFUSED if reason else ReferralStatus.ACTIVE,
            "refused_reason": reason,
        },
    )
    if not created:
        return None
    if reason:
        logger.info(
            "referral of account %s by account %s refused: %s",
            referee.pk,
            referrer.pk,
            reason,
        )
    return referral


def referral_reward_earn(*, topup_id: int) -> ReferralReward | None:
    """The referrer's reward for a top-up its referee paid, once: earned, or
    refused with the reason. None when the top-up earns none (not a referee's,
    not a paid credits top-up).

    The cards are compared before the transaction: Stripe is asked nothing
    while the top-up's row is locked. A Stripe failure raises (nothing is
    written) and the sweep tries again later.
    """
    topup = TopUp.objects.filter(pk=topup_id).first()
    if (
        topup is None
        or topup.purpose != TopUpPurpose.CREDITS
        or topup.status != TopUpStatus.SUCCEEDED
    ):
        return None
    referral = (
        Referral.objects.select_related("referrer")
        .filter(referee_id=topup.account_id, status=ReferralStatus.ACTIVE)
        .first()
    )
    if referral is None:
        return None
    existing = ReferralReward.objects.filter(topup_id=topup_id).first()
    if existing is not None:
        return existing
    same_card = _paid_with_referrers_card(topup, referral.referrer)
    with transaction.atomic():
        # The top-up's lock orders this after a refund or dispute of it (they
        # hold it too); the referrer's wallet lock makes the cap exact when
        # several of its referees pay at once.
        topup = TopUp.objects.select_for_update().get(pk=topup_id)
        existing = ReferralReward.objects.filter(topup_id=topup_id).first()
        if existing is not None:
            return existing
        wallet_lock(referral.referrer)
        reward = ReferralReward(
            referral=referral, referrer=referral.referrer, topup=topup
        )
        if topup.refunded_nanos or topup.disputed:
            return _refused(reward, RefusalReason.REVERSED)
        if same_card:
            return _refused(reward, RefusalReason.SAME_CARD)
        amount = rules.reward_under_cap(
            reward_nanos=settings.REFERRAL_REWARD_NANOS,
            cap_nanos=settings.REFERRAL_MONTHLY_CAP_NANOS,
            earned_nanos=_granted_this_month(referral.referrer),
        )
        if amount <= 0:
            return _refused(reward, RefusalReason.MONTHLY_CAP)
        reward.entry = credit_grant(
            account=referral.referrer,
            source=LotSource.REFERRAL,
            amount_nanos=amount,
            reason=f"Referral reward: a friend you referred paid a top-up of "
            f"{format_usd(topup.amount_nanos)}",
            actor=None,
            idempotency_key=f"referral:topup:{topup.pk}",
            reference=f"topup:{topup.pk}",
            method=METHOD,
        )
        reward.status = RewardStatus.EARNED
        reward.amount_nanos = amount
        reward.save()
        return reward


def _refused(reward: ReferralReward, reason: str) -> ReferralReward:
    reward.status = RewardStatus.REFUSED
    reward.refused_reason = reason
    reward.save()
    logger.info("referral reward for top-up %s refused: %s", reward.topup_id, reason)
    return reward


def _granted_this_month(referrer: Account) -> int:
    """What the referrer was granted this calendar month (UTC), revoked
    rewards included."""
    since = rules.month_start(timezone.now())
    return (
        ReferralReward.objects.filter(
            referrer=referrer, created_at__gte=since
        ).aggregate(total=Sum("amount_nanos"))["total"]
        or 0
    )


def _paid_with_referrers_card(topup: TopUp, referrer: Account) -> bool:
    """Whether the top-up's card is one the referrer uses: a card saved on the
    referrer's account, or one that paid the referrer's own top-ups (Stripe's
    fingerprint is the same for one card number on every account)."""
    fingerprint = _topup_fingerprint(topup)
    if fingerprint is None:
        return False  # not a card (Alipay): nothing to compare
    if fingerprint in gateway.card_fingerprints(account=referrer):
        return True
    theirs = TopUp.objects.filter(
        account=referrer, status=TopUpStatus.SUCCEEDED
    ).order_by("-created_at")[:REFERRER_TOPUPS_COMPARED]
    return any(_topup_fingerprint(own) == fingerprint for own in theirs)


def _topup_fingerprint(topup: TopUp) -> str | None:
    payment_method_id = topup.payment_method_id
    if not payment_method_id and topup.payment_intent_id:
        # Paid with a card typed into Stripe.js: the PaymentIntent names it.
        intent = gateway.payment_intent_retrieve(
            payment_intent_id=topup.payment_intent_id
        )
        payment_method_id = intent.payment_method_id
    if not payment_method_id:
        return None
    return gateway.card_fingerprint(payment_method_id=payment_method_id)


@transaction.atomic
def referral_reward_revoke(
    *, topup: TopUp, kind: str, reference: str
) -> ReferralReward | None:
    """A referee's top-up was refunded or disputed (``kind``, Stripe's id
    ``reference``): its reward is revoked, once, by what remains of it. A
    top-up whose reward is not paid yet is marked so that it never is."""
    referral = Referral.objects.filter(
        referee_id=topup.account_id, status=ReferralStatus.ACTIVE
    ).first()
    if referral is None or topup.purpose != TopUpPurpose.CREDITS:
        return None
    reward = (
        ReferralReward.objects.select_for_update().filter(topup_id=topup.pk).first()
    )
    if reward is None:
        try:
            with transaction.atomic():
                return ReferralReward.objects.create(
                    referral=referral,
                    referrer_id=referral.referrer_id,
                    topup=topup,
                    status=RewardStatus.REFUSED,
                    refused_reason=RefusalReason.REVERSED,
                    revoked_by=f"{kind} {reference}"[:200],
                )
        except IntegrityError:
            # Its reward was being written: the top-up's lock, which the
            # caller holds, makes this unreachable; read it if it is not.
            reward = ReferralReward.objects.select_for_update().get(topup_id=topup.pk)
    if reward.status != RewardStatus.EARNED:
        return reward  # refused, or revoked by an earlier refund or dispute
    what = "refunded" if kind == "refund" else "disputed"
    revocation = grant_revoke(
        entry=reward.entry,
        reason=f"the referred top-up of {format_usd(topup.amount_nanos)} was {what}",
    )
    reward.status = RewardStatus.REVOKED
    reward.revocation_entry = revocation
    reward.revoked_nanos = -revocation.amount_nanos if revocation else 0
    reward.revoked_by = f"{kind} {reference}"[:200]
    reward.revoked_at = timezone.now()
    reward.save()
    return reward


def referral_rewards_sweep(*, since_days: int = 7) -> int:
    """Reward the referees' top-ups paid in the last days that have no reward
    yet (the task queued when one was credited did not run, or Stripe did not
    answer it); how many were decided now."""
    since = timezone.now() - timedelta(days=since_days)
    pending = (
        TopUp.objects.filter(
            status=TopUpStatus.SUCCEEDED,
            purpose=TopUpPurpose.CREDITS,
            succeeded_at__gte=since,
            account__referral__status=ReferralStatus.ACTIVE,
            referral_reward__isnull=True,
        )
        .order_by("succeeded_at")
        .values_list("pk", flat=True)
    )
    decided = 0
    for topup_id in list(pending):
        try:
            if referral_reward_earn(topup_id=topup_id) is not None:
                decided += 1
        except BillingError:
            # Stripe did not answer about its card: the next sweep asks again.
            logger.exception("referral reward for top-up %s not decided", topup_id)
    return decided
