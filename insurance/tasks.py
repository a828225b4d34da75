"""Insurance's Celery task: the daily payout (settings.CELERY_BEAT_SCHEDULE,
01:15 UTC, when yesterday's requests have all been settled: a request's hold
lives at most HOLD_TTL).

Each run pays the last ``CATCH_UP_DAYS`` days, not only yesterday: a run that
did not happen (the worker was down at 01:15) is made up by the next one. A
day already paid is paid nothing more (its entry's idempotency key, per
account and day), so going over it again costs a scan and no money."""

from __future__ import annotations

from datetime import date, timedelta

from celery import shared_task
from django.utils import timezone

from insurance.services import insurance_day_pay

CATCH_UP_DAYS = 3


@shared_task
def insurance_pay_yesterday(day: str | None = None) -> int:
    """Pay the covered requests of ``day`` (ISO date); beat gives none: the
    last CATCH_UP_DAYS days up to yesterday (UTC), oldest first. Returns how
    many account-days were paid."""
    if day:
        days = [date.fromisoformat(day)]
    else:
        today = timezone.now().date()
        days = [today - timedelta(days=n) for n in range(CATCH_UP_DAYS, 0, -1)]
    return sum(len(insurance_day_pay(day=chosen)) for chosen in days)
