"""The prepaid credit ledger.

Balances live in three places that must always agree (see ``reconciliation``):
the wallet row (fast reads, the lock for every change), the credit lots (what
is left of each inflow) and the append-only journal (every change, forever).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Account
from money import format_usd


class Pool(models.TextChoices):
    TOPUP = "topup", "Top-up credits"
    BONUS = "bonus", "Bonus & compensation credits"


class LotSource(models.TextChoices):
    TOPUP = "topup", "Top-up"
    BONUS = "bonus", "Top-up bonus"
    GIFT = "gift", "Gift"
    REFERRAL = "referral", "Referral"
    COMPENSATION = "compensation", "Compensation"
    ADJUSTMENT = "adjustment", "Adjustment"


class EntryKind(models.TextChoices):
    TOPUP = "topup", "Top-up"
    BONUS = "bonus", "Top-up bonus"
    GIFT = "gift", "Gift"
    REFERRAL = "referral", "Referral"
    COMPENSATION = "compensation", "Compensation"
    ADJUSTMENT = "adjustment", "Adjustment"
    EXPIRY = "expiry", "Expired credits"
    USAGE = "usage", "API usage"
    REFUND = "refund", "Refund"
    DISPUTE = "dispute", "Dispute"


class Wallet(models.Model):
    """The account's balances, one row per account: the row every change locks."""

    account = models.OneToOneField(
        Account, on_delete=models.PROTECT, primary_key=True, related_name="wallet"
    )
    topup_nanos = models.BigIntegerField(default=0)
    bonus_nanos = models.BigIntegerField(default=0)
    held_nanos = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(topup_nanos__gte=0), name="wallet_topup_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(bonus_nanos__gte=0), name="wallet_bonus_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(held_nanos__gte=0), name="wallet_held_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(
                    held_nanos__lte=models.F("topup_nanos") + models.F("bonus_nanos")
                ),
                name="wallet_held_within_total",
            ),
        ]

    def __str__(self) -> str:
        return f"wallet of {self.account}"

    @property
    def total_nanos(self) -> int:
        return self.topup_nanos + self.bonus_nanos

    @property
    def available_nanos(self) -> int:
        return self.total_nanos - self.held_nanos


class LedgerEntry(models.Model):
    """One change of a balance. Never updated or deleted (a database trigger
    refuses both); a mistake is corrected by a new entry that ``reverses`` it.

    Indexes are few on purpose: every debit of a hot account inserts a row here
    while it holds the account's lock.
    """

    # Indexed by the (account, idempotency_key) and (account, kind, ...) indexes.
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=16, choices=EntryKind.choices)
    amount_nanos = models.BigIntegerField()
    topup_delta_nanos = models.BigIntegerField()
    bonus_delta_nanos = models.BigIntegerField()
    topup_balance_nanos = models.BigIntegerField()
    bonus_balance_nanos = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    description = models.CharField(max_length=500, blank=True)
    # What caused it: a payment intent, a request or batch id, a claim, a lot.
    reference = models.CharField(max_length=200, blank=True)
    # How it was paid or given, for people: "Stripe (Visa •••• 4242)", "Platform".
    method = models.CharField(max_length=100, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    reverses = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reversals",
        db_index=False,
    )
    idempotency_key = models.CharField(max_length=200)

    class Meta:
        verbose_name = "journal entry"
        verbose_name_plural = "journal"
        constraints = [
            models.UniqueConstraint(
                fields=["account", "idempotency_key"],
                name="entry_idempotency_key_unique",
            ),
            models.CheckConstraint(
                condition=Q(
                    amount_nanos=models.F("topup_delta_nanos")
                    + models.F("bonus_delta_nanos")
                ),
                name="entry_amount_is_split",
            ),
            models.CheckConstraint(condition=~Q(amount_nanos=0), name="entry_not_zero"),
            # An entry is reversed at most once.
            models.UniqueConstraint(
                fields=["reverses"],
                condition=Q(reverses__isnull=False),
                name="entry_reversed_once",
            ),
        ]
        indexes = [
            # The breakdown, the history (usage per day, the rest per entry).
            models.Index(
                fields=["account", "kind", "created_at"], name="entry_account_kind"
            ),
            models.Index(
                fields=["actor"], name="entry_actor", condition=Q(actor__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        amount = format_usd(self.amount_nanos, 9)
        return f"{self.kind} {amount} ({self.idempotency_key})"


class CreditLot(models.Model):
    """One inflow of credits and what is left of it."""

    # Indexed by the spending-order index.
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    source = models.CharField(max_length=16, choices=LotSource.choices)
    pool = models.CharField(max_length=8, choices=Pool.choices)
    amount_nanos = models.BigIntegerField()
    remaining_nanos = models.BigIntegerField()
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    entry = models.ForeignKey(LedgerEntry, on_delete=models.PROTECT, related_name="+")
    # A top-up's bonus lot points at the top-up lot, so a refund can forfeit it.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_nanos__gt=0), name="lot_amount_positive"
            ),
            models.CheckConstraint(
                condition=Q(remaining_nanos__gte=0)
                & Q(remaining_nanos__lte=models.F("amount_nanos")),
                name="lot_remaining_within_amount",
            ),
        ]
        # No index mentions remaining_nanos, not even in a condition, so a debit's
        # update of a lot is a HOT update that touches no index.
        indexes = [
            models.Index(
                "account",
                "pool",
                "expires_at",
                "created_at",
                "id",
                name="lot_spending_order",
            ),
            models.Index("expires_at", name="lot_due_to_expire"),
        ]

    def __str__(self) -> str:
        return f"{self.source} lot #{self.pk}"


class LotMovement(models.Model):
    """How one journal entry changed one lot: a lot's remaining is the sum of its
    movements, which lets a debit be reversed into the lots it came from."""

    entry = models.ForeignKey(
        LedgerEntry, on_delete=models.PROTECT, related_name="movements"
    )
    lot = models.ForeignKey(
        CreditLot, on_delete=models.PROTECT, related_name="movements"
    )
    delta_nanos = models.BigIntegerField()

    def __str__(self) -> str:
        sign = "+" if self.delta_nanos > 0 else ""
        amount = f"{sign}{format_usd(self.delta_nanos, 9)}"
        return f"{amount} on lot #{self.lot_id} by entry #{self.entry_id}"


class HoldState(models.TextChoices):
    ACTIVE = "active", "Active"
    SETTLED = "settled", "Settled"
    RELEASED = "released", "Released"
    EXPIRED = "expired", "Expired (swept)"


class Hold(models.Model):
    """Credits set aside for a request in flight, until it is settled."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    amount_nanos = models.BigIntegerField()
    state = models.CharField(
        max_length=8, choices=HoldState.choices, default=HoldState.ACTIVE
    )
    reference = models.CharField(max_length=200, blank=True)
    # What else the hold counts against, named by its caller in its own terms
    # (such as a credit limit of the caller's; see billing_hold_many). Billing
    # stores it and never interprets it.
    owner = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    # The request's cost, and what of it the balance covered when settled.
    cost_nanos = models.BigIntegerField(default=0)
    charged_nanos = models.BigIntegerField(default=0)
    entry = models.ForeignKey(
        LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_nanos__gt=0), name="hold_amount_positive"
            ),
        ]
        indexes = [
            models.Index(
                "expires_at", name="hold_active_expiry", condition=Q(state="active")
            ),
            models.Index(
                "account", name="hold_active_account", condition=Q(state="active")
            ),
        ]

    def __str__(self) -> str:
        return f"hold {self.id} ({self.state})"


class ReconciliationRun(models.Model):
    """One check of every ledger invariant for every account."""

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    accounts_checked = models.IntegerField(default=0)
    drift_count = models.IntegerField(default=0)
    drifts = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        when = f"{self.started_at:%Y-%m-%d %H:%M}"
        return f"reconciliation {when} ({self.drift_count} drift)"


__all__ = [
    "Pool",
    "LotSource",
    "EntryKind",
    "Wallet",
    "LedgerEntry",
    "CreditLot",
    "LotMovement",
    "HoldState",
    "Hold",
    "ReconciliationRun",
]
