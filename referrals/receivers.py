"""The referral program listens to the floors below it: a new account gets
its code, a signup with a code is recorded, a referee's paid top-up earns its
referrer a reward, and a refund or dispute of that top-up revokes it.

Each receiver calls one service; all are idempotent (a code per account, a
referral per referee, a reward per top-up, a revocation per reward).
"""

from __future__ import annotations

from functools import partial

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.models import Account, User
from accounts.signals import user_signed_up
from billing.models import TopUp
from billing.payments.signals import topup_credited, topup_reversed
from referrals.models import Referral, ReferralStatus
from referrals.services import (
    referral_code_for,
    referral_record,
    referral_reward_revoke,
)
from referrals.tasks import referral_reward_earn


@receiver(post_save, sender=Account, dispatch_uid="referrals.code_for_new_account")
def code_for_new_account(sender, instance: Account, created: bool, raw: bool, **kw):
    if created and not raw:
        referral_code_for(account=instance)


@receiver(user_signed_up, sender=User, dispatch_uid="referrals.referral_at_signup")
def referral_at_signup(sender, user: User, ref: str, **kwargs):
    if ref:
        referral_record(referee=user.account, code=ref)


@receiver(topup_credited, sender=TopUp, dispatch_uid="referrals.reward_on_topup")
def reward_on_topup(sender, topup: TopUp, **kwargs):
    # Sent inside the crediting transaction with the top-up locked. The reward
    # asks Stripe about the card, so it is earned after the commit, by a task
    # (and, should that be lost, by the sweep).
    referred = Referral.objects.filter(
        referee_id=topup.account_id, status=ReferralStatus.ACTIVE
    ).exists()
    if referred:
        transaction.on_commit(partial(referral_reward_earn.delay, topup.pk))


@receiver(topup_reversed, sender=TopUp, dispatch_uid="referrals.revoke_on_reversal")
def revoke_on_reversal(sender, topup: TopUp, kind: str, reference: str, **kwargs):
    referral_reward_revoke(topup=topup, kind=kind, reference=reference)
