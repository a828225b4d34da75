"""Emails about payments: to a customer whose auto top-up paused, and to the
operators when a payment needs them. Sent after commit, by the callers."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail


def autotopup_paused_tell(
    email: str, reason: str, *, operator_only: bool = False
) -> None:
    if operator_only:
        after = (
            "No further automatic charges will be made until our team has "
            "reviewed it and resumed auto top-up; saving the settings does not "
            "resume it. Reply to this email if you have questions.\n"
        )
    else:
        after = (
            "No further automatic charges will be made until you save your auto "
            f"top-up settings again at {settings.SITE_URL}/console/billing "
            "(check your card first if it was declined).\n"
        )
    send_mail(
        subject="AGIPower: auto top-up is paused",
        message=f"Auto top-up of your AGIPower balance is paused: {reason}.\n\n"
        + after,
        from_email=None,
        recipient_list=[email],
        fail_silently=True,
    )


def operator_emails() -> list[str]:
    """``PAYMENTS_ALERT_EMAILS``, or else every active superuser's email."""
    if settings.PAYMENTS_ALERT_EMAILS:
        return list(settings.PAYMENTS_ALERT_EMAILS)
    users = get_user_model().objects.filter(is_active=True, is_superuser=True)
    return sorted(set(users.exclude(email="").values_list("email", flat=True)))


def operators_tell(*, subject: str, message: str) -> None:
    recipients = operator_emails()
    if recipients:
        send_mail(
            subject=f"AGIPower operators: {subject}",
            message=message,
            from_email=None,
            recipient_list=recipients,
            fail_silently=True,
        )
