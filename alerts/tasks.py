"""Alerts' Celery tasks: the scan every minute (settings.CELERY_BEAT_SCHEDULE)
and one email per alert. An email task's argument is the alert's id, never an
address or the email's text."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task

from alerts import emails, scan


@shared_task
def alerts_scan(now: datetime | None = None) -> int:
    """Write the alerts due now, then (committed) queue one email each, and
    again those whose email task was lost. ``now``: the moment to judge at,
    for tests that move the clock; beat gives none."""
    due = scan.alerts_due(now=now)
    for alert_id in [*due, *scan.alerts_unsent(now=now)]:
        alert_email.delay(alert_id)
    return len(due)


@shared_task
def alert_email(alert_id: int) -> bool:
    return emails.alert_email_send(alert_id=alert_id)
