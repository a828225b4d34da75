"""AI insurance's rows: the coverage rules operators edit, the payouts made
(one per request, ever) and the customers' claims.

A request log lives in a partitioned table whose primary key is
``(id, created_at)``: a payout or a claim keeps both, and no foreign key (a
partitioned table's key cannot be referenced by one column, and retention drops
old months of logs while their payouts stay)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Account
from accounts.validators import plain_text_multiline
from billing.models import LedgerEntry

# A customer may claim a request for this long after it was made.
CLAIM_WINDOW = timedelta(days=7)


class RuleKind(models.TextChoices):
    # In the order a request matching several rules is paid by (see
    # insurance.coverage): the failures first, the slowness last.
    STREAM_FAILURE = "stream_failure", "Upstream failure after output began"
    EMPTY_OUTPUT = "empty_output", "Empty output"
    TRUNCATED_OUTPUT = "truncated_output", "Truncated output"
    HIGH_LATENCY = "high_latency", "High latency"


class CoverageRule(models.Model):
    """One rule for one model, or (``model`` empty) for every model that has
    no rule of this kind of its own. A model's own rule replaces the default
    one whole: turned off, it leaves that model uncovered by this kind."""

    model = models.CharField(
        max_length=100,
        blank=True,
        help_text="A catalog model id (openai/gpt-5); empty: every model without "
        "a rule of this kind of its own",
    )
    kind = models.CharField(max_length=20, choices=RuleKind.choices)
    enabled = models.BooleanField(default=True)
    payout_percent = models.PositiveSmallIntegerField(
        default=100,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="The share of the request's cost paid back (1-100%)",
    )
    ttft_ms = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="High latency: covered when the time to first token (streamed "
        "requests) is above this many ms; empty: not judged by it",
    )
    latency_ms = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="High latency: covered when the whole request took more than "
        "this many ms; empty: not judged by it",
    )
    truncated_percent = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Truncated output: covered when the answer stopped for its "
        "length with fewer completion tokens than this share of the "
        "max_tokens the request asked for",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("model", "kind")
        constraints = [
            models.UniqueConstraint(fields=["model", "kind"], name="rule_model_kind"),
            models.CheckConstraint(
                condition=Q(payout_percent__gte=1) & Q(payout_percent__lte=100),
                name="rule_payout_percent_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.model or 'every model'})"


class ClaimStatus(models.TextChoices):
    PENDING = "pending", "Under review"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"


class Claim(models.Model):
    """A customer's claim on one of their requests (poor quality, a wrong
    answer), decided by an operator. At most one per request, ever."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    request_id = models.UUIDField(unique=True)
    request_created_at = models.DateTimeField()
    model = models.CharField(max_length=100)
    cost_nanos = models.BigIntegerField(help_text="What the request cost")
    reason = models.TextField(validators=[plain_text_multiline])
    status = models.CharField(
        max_length=10, choices=ClaimStatus.choices, default=ClaimStatus.PENDING
    )
    decision_reason = models.TextField(
        blank=True,
        validators=[plain_text_multiline],
        help_text="Why it was declined (shown to the customer)",
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["account", "-created_at"], name="claim_account_time"),
            models.Index(
                fields=["created_at"],
                condition=Q(status="pending"),
                name="claim_pending",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="pending") | Q(decided_at__isnull=False),
                name="claim_decided_when",
            ),
        ]

    def __str__(self) -> str:
        return f"claim #{self.pk} on {self.request_id}"


class Payout(models.Model):
    """What one request was paid back, and the journal entry that paid it: the
    daily run's entry for the account's day (many payouts), or an accepted
    claim's own entry. ``request_id`` is unique: a request is paid once."""

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    request_id = models.UUIDField(unique=True)
    request_created_at = models.DateTimeField()
    model = models.CharField(max_length=100)
    kind = models.CharField(
        max_length=20,
        choices=[*RuleKind.choices, ("claim", "Claim")],
        help_text="The rule that covered the request, or a claim",
    )
    cost_nanos = models.BigIntegerField(help_text="What the request cost")
    payout_percent = models.PositiveSmallIntegerField()
    amount_nanos = models.BigIntegerField()
    entry = models.ForeignKey(LedgerEntry, on_delete=models.PROTECT, related_name="+")
    claim = models.OneToOneField(
        Claim, null=True, blank=True, on_delete=models.PROTECT, related_name="payout"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(
                fields=["account", "-request_created_at", "-id"],
                name="payout_account_time",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_nanos__gt=0), name="payout_amount_positive"
            ),
            models.CheckConstraint(
                condition=Q(amount_nanos__lte=models.F("cost_nanos")),
                name="payout_within_cost",
            ),
        ]

    def __str__(self) -> str:
        return f"payout on {self.request_id}"
