from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q, Sum
from django.utils import timezone

from accounts.models import Account
from billing.ledger.models import Hold, HoldState


class KeyKind(models.TextChoices):
    PAYG = "payg", "Pay As You Go"  # calls /v1
    MANAGEMENT = "management", "Management"  # calls /api/v1


class KeyStatus(models.TextChoices):
    ENABLED = "enabled", "Enabled"
    DISABLED = "disabled", "Disabled"


class LimitReset(models.TextChoices):
    NONE = "none", "Never"
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"
    MONTHLY = "monthly", "Monthly"


class ApiKey(models.Model):
    """An API key of an account. The key itself is never stored: only its HMAC
    digest, and a display prefix that cannot be used to call anything."""

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=12, choices=KeyKind.choices)
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=32)
    digest = models.CharField(max_length=64, unique=True)
    status = models.CharField(
        max_length=8, choices=KeyStatus.choices, default=KeyStatus.ENABLED
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Written at most once a minute per key, not on every request.
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Exact: every settled request adds its charge.
    used_nanos = models.BigIntegerField(default=0)
    # Optional credit limit per period (UTC). While a request is in flight its
    # hold counts against the limit too, so concurrent requests cannot pass it.
    limit_nanos = models.BigIntegerField(null=True, blank=True)
    limit_reset = models.CharField(
        max_length=8, choices=LimitReset.choices, default=LimitReset.NONE
    )
    period_start = models.DateTimeField(null=True, blank=True)
    period_used_nanos = models.BigIntegerField(default=0)
    disabled_reason = models.CharField(max_length=500, blank=True)
    disabled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        constraints = [
            models.CheckConstraint(
                condition=Q(limit_nanos__isnull=True) | Q(limit_nanos__gt=0),
                name="apikey_limit_positive",
            ),
        ]
        indexes = [
            models.Index(
                fields=["account", "kind", "-created_at"],
                name="apikey_account_list",
                condition=Q(deleted_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def is_usable(self) -> bool:
        return self.status == KeyStatus.ENABLED and self.deleted_at is None

    @property
    def hold_owner(self) -> str:
        """How the holds the proxy places for this key's requests name it
        (proxy/sql/proxy_v1.sql spells it the same)."""
        return f"apikey:{self.pk}"

    @property
    def held_nanos(self) -> int:
        """What requests in flight hold against the credit limit: the sum of the
        active holds placed for this key (one query)."""
        held = Hold.objects.filter(
            account_id=self.account_id, state=HoldState.ACTIVE, owner=self.hold_owner
        ).aggregate(total=Sum("amount_nanos"))["total"]
        return held or 0


class KeyActionKind(models.TextChoices):
    ENABLED = "enabled", "Enabled by its owner"
    DISABLED = "disabled", "Disabled by its owner"
    OPERATOR_ENABLED = "operator_enabled", "Enabled by an operator"
    OPERATOR_DISABLED = "operator_disabled", "Disabled by an operator"
    LIMIT_CHANGED = "limit_changed", "Credit limit changed"
    DELETED = "deleted", "Deleted"


class KeyAction(models.Model):
    """One change of a key's status, credit limit or existence, by its owner or
    an operator: who, when, why, and the key before and after. Written by the
    services (``apikeys.services``) in the transaction of the change itself;
    append-only (the database refuses UPDATE and DELETE), so a key's history is
    kept where the key itself only says its present state."""

    api_key = models.ForeignKey(
        ApiKey, on_delete=models.PROTECT, related_name="actions", db_index=False
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Who acted: an operator, or the key's owner",
    )
    at = models.DateTimeField(default=timezone.now)
    action = models.CharField(max_length=20, choices=KeyActionKind.choices)
    reason = models.CharField(max_length=500, blank=True)
    status_before = models.CharField(max_length=8, choices=KeyStatus.choices)
    status_after = models.CharField(max_length=8, choices=KeyStatus.choices)
    limit_nanos_before = models.BigIntegerField(null=True, blank=True)
    limit_nanos_after = models.BigIntegerField(null=True, blank=True)
    limit_reset_before = models.CharField(max_length=8, choices=LimitReset.choices)
    limit_reset_after = models.CharField(max_length=8, choices=LimitReset.choices)

    class Meta:
        verbose_name = "key action"
        indexes = [models.Index(fields=["api_key", "at"], name="keyaction_key_at")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} at {self.at:%Y-%m-%d %H:%M:%S}"
