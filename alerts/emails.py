"""An alert's email, sent by its task (``alerts.tasks.alert_email``) through
Django's email backend, as payments' notices are: plain text, to the account's
owner."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC

from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse
from django.utils import timezone

from alerts.models import Alert, AlertKind
from apikeys.models import LimitReset
from money import format_usd, usd

logger = logging.getLogger(__name__)

PERIODS = {
    LimitReset.DAILY: "daily",
    LimitReset.WEEKLY: "weekly",
    LimitReset.MONTHLY: "monthly",
}


@dataclass(frozen=True)
class Message:
    subject: str
    body: str


def _link(name: str, *args) -> str:
    return settings.SITE_URL.rstrip("/") + reverse(name, args=args)


def low_balance_message(alert: Alert) -> Message:
    balance = usd(alert.balance_nanos, precise=True)
    threshold = format_usd(alert.threshold_nanos)
    return Message(
        subject=f"AGIPower: your balance is below {threshold}",
        body=(
            f"Your AGIPower balance is {balance}, below the {threshold} you asked "
            "to hear about. API requests are refused once it runs out.\n\n"
            f"Top up: {_link('console:payg')}\n\n"
            "You will not hear about this again until your balance has risen to "
            f"{threshold} or more and falls below it once more. Change or turn off "
            f"this alert: {_link('console:alerts')}\n"
        ),
    )


def key_usage_message(alert: Alert) -> Message:
    key = alert.api_key
    used = usd(alert.key_used_nanos, precise=True)
    limit = format_usd(alert.key_limit_nanos)
    share = alert.key_used_nanos * 100 // alert.key_limit_nanos
    period = PERIODS.get(alert.key_limit_reset)
    if period:
        limit_text = f"its {period} credit limit of {limit}"
        since = alert.key_period_start.astimezone(UTC)
        when = f" this period (since {since:%Y-%m-%d %H:%M} UTC)"
        after = "The limit resets at the start of the next period (UTC).\n\n"
    else:
        limit_text = f"its credit limit of {limit}"
        when = ""
        after = ""
    return Message(
        subject=f"AGIPower: API key “{key.name}” has used {share}% of its limit",
        body=(
            f"Your API key “{key.name}” ({key.prefix}) has used {used} of "
            f"{limit_text}{when}: {share}%, past the {alert.key_percent}% you "
            "asked to hear about. Requests with this key are refused once it "
            "reaches the limit.\n\n"
            f"{after}"
            f"See or change the key: {_link('keys:detail', key.pk)}\n\n"
            f"Change or turn off these alerts: {_link('console:alerts')}\n"
        ),
    )


def alert_email_send(*, alert_id: int) -> bool:
    """Send an alert's email, at most once: the alert is claimed first (a task
    run twice, or queued again by the scan, finds it claimed). True if this
    call sent it."""
    claimed = Alert.objects.filter(pk=alert_id, emailed_at=None).update(
        emailed_at=timezone.now()
    )
    if not claimed:
        return False
    alert = Alert.objects.select_related("account__owner", "api_key").get(pk=alert_id)
    if alert.kind == AlertKind.LOW_BALANCE:
        message = low_balance_message(alert)
    else:
        message = key_usage_message(alert)
    try:
        send_mail(
            subject=message.subject,
            message=message.body,
            from_email=None,
            recipient_list=[alert.account.owner.email],
        )
    except Exception:
        # Not retried: a mail server that refuses now would be asked again
        # every minute. The alert stays in the account's list of alerts.
        logger.exception("the email of alert %s could not be sent", alert_id)
        return False
    return True
