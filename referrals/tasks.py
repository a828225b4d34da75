"""The referral program's background work: a referee's top-up rewarded after
it was credited (it asks Stripe about the card), and the sweep that rewards
any whose task was lost (scheduled in settings.CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

import logging

from celery import shared_task

from billing.errors import BillingError
from referrals import services

logger = logging.getLogger(__name__)


@shared_task
def referral_reward_earn(topup_id: int) -> None:
    try:
        services.referral_reward_earn(topup_id=topup_id)
    except BillingError:
        # Stripe did not answer about the card: the sweep tries again.
        logger.exception("referral reward for top-up %s not decided", topup_id)


@shared_task
def referral_rewards_sweep() -> int:
    return services.referral_rewards_sweep()
