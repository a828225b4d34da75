"""The customer's alert settings, what the scan remembers, and every alert sent."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Account
from money import NANOS_PER_USD, format_usd

# The settings of an account that never saved any.
DEFAULT_THRESHOLD_NANOS = 3 * NANOS_PER_USD
DEFAULT_PERCENT = 80
# What a customer may choose.
MIN_THRESHOLD_NANOS = NANOS_PER_USD // 100
MAX_THRESHOLD_NANOS = 100_000 * NANOS_PER_USD
MIN_PERCENT, MAX_PERCENT = 1, 100


class AlertSettings(models.Model):
    """An account's choices. Made when first saved: an account without a row
    has the defaults (the scan reads them so, in SQL, too)."""

    account = models.OneToOneField(
        Account, on_delete=models.PROTECT, primary_key=True, related_name="+"
    )
    low_balance_enabled = models.BooleanField(default=True)
    low_balance_threshold_nanos = models.BigIntegerField(
        default=DEFAULT_THRESHOLD_NANOS
    )
    key_usage_enabled = models.BooleanField(default=True)
    key_usage_percent = models.PositiveSmallIntegerField(default=DEFAULT_PERCENT)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "alert settings"
        verbose_name_plural = "alert settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(low_balance_threshold_nanos__gte=MIN_THRESHOLD_NANOS)
                & Q(low_balance_threshold_nanos__lte=MAX_THRESHOLD_NANOS),
                name="alertsettings_threshold_range",
            ),
            models.CheckConstraint(
                condition=Q(key_usage_percent__gte=MIN_PERCENT)
                & Q(key_usage_percent__lte=MAX_PERCENT),
                name="alertsettings_percent_range",
            ),
        ]

    def __str__(self) -> str:
        return f"alert settings of {self.account_id}"


class LowBalanceState(models.Model):
    """Up to which journal entry the account's falls below the threshold are
    done with: alerted (the entry that crossed it), or void because the
    customer changed the low-balance settings then. A later entry that takes
    the balance from at or above the threshold to below it is a new crossing.
    Written only by an alert and by a change of the settings, not by every
    scan."""

    account = models.OneToOneField(
        Account, on_delete=models.PROTECT, primary_key=True, related_name="+"
    )
    judged_entry_id = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return (
            f"low balance of {self.account_id} judged to entry {self.judged_entry_id}"
        )


class AlertKind(models.TextChoices):
    LOW_BALANCE = "low_balance", "Low balance"
    KEY_USAGE = "key_usage", "Key usage"


class Alert(models.Model):
    """One alert, written by the scan in the statement that found it due (so
    two scans never write it twice), with what it says; ``emailed_at`` is set
    by the task that sends its email."""

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=16, choices=AlertKind.choices)
    created_at = models.DateTimeField(default=timezone.now)
    emailed_at = models.DateTimeField(null=True, blank=True)
    # Low balance: the balance seen below the threshold.
    balance_nanos = models.BigIntegerField(null=True, blank=True)
    threshold_nanos = models.BigIntegerField(null=True, blank=True)
    # Key usage: the key, its period, its use in it and its limit then.
    api_key = models.ForeignKey(
        "apikeys.ApiKey",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    key_period_start = models.DateTimeField(null=True, blank=True)
    key_used_nanos = models.BigIntegerField(null=True, blank=True)
    key_limit_nanos = models.BigIntegerField(null=True, blank=True)
    key_limit_reset = models.CharField(max_length=8, blank=True, db_default="")
    key_percent = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            # Once per key, period and limit (a new limit is a new budget).
            models.UniqueConstraint(
                fields=["api_key", "key_period_start", "key_limit_nanos"],
                condition=Q(kind="key_usage"),
                name="alert_key_once_per_period",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "-created_at"], name="alert_account"),
            # Alerts whose email task was lost (see scan.alerts_unsent).
            models.Index(
                fields=["created_at"],
                name="alert_not_emailed",
                condition=Q(emailed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        if self.kind == AlertKind.LOW_BALANCE:
            return (
                f"balance {format_usd(self.balance_nanos or 0)} below "
                f"{format_usd(self.threshold_nanos or 0)}"
            )
        return f"key {self.api_key_id} at {self.key_percent}% of its limit"


class ScanMark(models.Model):
    """The newest journal entry when a scan began. A scan reads the entries
    after the mark of a few minutes before (``scan.LOOKBACK``), so an entry
    whose transaction committed after a later one's is read too."""

    at = models.DateTimeField()
    journal_entry_id = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["at"], name="scanmark_at")]

    def __str__(self) -> str:
        return f"entry {self.journal_entry_id} at {self.at:%Y-%m-%d %H:%M:%S}"
