"""Insurance's Celery task: the daily payout (settings.CELERY_BEAT_SCHEDULE,
01:15 UTC, when yesterday's requests have all been settled: a request's hold
lives at most HOLD_TTL)."""

from __future__ import annotations

from datetime import date, timedelta

from celery import shared_task
from django.utils import timezone

from insurance.services import insurance_day_pay


@shared_task
def insurance_pay_yesterday(day: str | None = None) -> int:
    """Pay the covered requests of ``day`` (ISO date; beat gives none:
    yesterday, UTC). Returns how many accounts were paid."""
    chosen = (
        date.fromisoformat(day) if day else timezone.now().date() - timedelta(days=1)
    )
    return len(insurance_day_pay(day=chosen))
