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
    # The API key whose credit limit the hold also counts against, if any.
    api_key = models.ForeignKey(
        "apikeys.ApiKey",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
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


class TopUpStatus(models.TextChoices):
    CREATED = "created", "Created"
    REQUIRES_ACTION = "requires_action", "Waiting for the customer (3-D Secure)"
    PROCESSING = "processing", "Processing"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"
    # Stripe says it succeeded for another amount or currency: nothing is
    # credited, and operators decide (a PaymentMismatch row says what arrived).
    MISMATCH = "mismatch", "Paid amount differs: held for operators"


class TopUpMethod(models.TextChoices):
    CARD = "card", "Card"
    ALIPAY = "alipay", "Alipay"


class TopUp(models.Model):
    """One payment for credits, by Stripe PaymentIntent. Credited once, from the
    verified ``payment_intent.succeeded`` webhook (or an equal server check)."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    amount_nanos = models.BigIntegerField()
    bonus_nanos = models.BigIntegerField(default=0)
    method = models.CharField(max_length=8, choices=TopUpMethod.choices)
    payment_intent_id = models.CharField(
        max_length=100, null=True, blank=True, unique=True
    )
    payment_method_id = models.CharField(max_length=100, blank=True)
    card_brand = models.CharField(max_length=20, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    status = models.CharField(
        max_length=16, choices=TopUpStatus.choices, default=TopUpStatus.CREATED
    )
    failure_message = models.CharField(max_length=300, blank=True)
    automatic = models.BooleanField(default=False, help_text="made by auto top-up")
    created_at = models.DateTimeField(default=timezone.now)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    # The top-up lot's journal entry, once credited.
    entry = models.OneToOneField(
        LedgerEntry,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="topup",
    )
    refunded_nanos = models.BigIntegerField(default=0)
    disputed = models.BooleanField(default=False)

    class Meta:
        verbose_name = "top-up"
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_nanos__gt=0), name="topup_amount_positive"
            ),
            models.CheckConstraint(
                condition=Q(refunded_nanos__gte=0)
                & Q(refunded_nanos__lte=models.F("amount_nanos")),
                name="topup_refund_within_amount",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "-created_at"], name="topup_account")
        ]

    def __str__(self) -> str:
        return f"top-up {self.pk} ({self.status})"

    @property
    def method_label(self) -> str:
        if self.card_last4:
            return (
                f"Stripe ({self.card_brand.title() or 'Card'} •••• {self.card_last4})"
            )
        return f"Stripe ({self.get_method_display()})"


class AutoTopUp(models.Model):
    """Auto top-up: when the balance falls below the threshold, charge the saved
    card once for the amount. At most one attempt is in flight, one charge is
    made per crossing of the threshold (``armed``), and a cap bounds the charges
    of any 24 hours."""

    account = models.OneToOneField(
        Account, on_delete=models.PROTECT, primary_key=True, related_name="auto_topup"
    )
    enabled = models.BooleanField(default=False)
    threshold_nanos = models.BigIntegerField(default=10 * 10**9)
    amount_nanos = models.BigIntegerField(default=100 * 10**9)
    payment_method_id = models.CharField(max_length=100, blank=True)
    # The attempt in flight: set by the one worker that claims it, cleared when
    # its payment succeeds or fails.
    in_flight = models.OneToOneField(
        TopUp, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # True while a charge may be made when the balance is below the threshold.
    # A charge clears it; seeing the balance at or above the threshold again
    # (or the customer saving the settings) sets it: one charge per crossing.
    armed = models.BooleanField(default=True)
    # Operators' cap for this account; empty: settings.AUTOTOPUP_MAX_*_PER_DAY.
    max_charges_per_day = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="automatic charges in any 24 hours; empty: the platform's default",
    )
    max_nanos_per_day = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="USD charged automatically in any 24 hours; empty: the default",
    )
    paused_reason = models.CharField(max_length=300, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "auto top-up"
        constraints = [
            models.CheckConstraint(
                condition=Q(max_nanos_per_day__isnull=True)
                | Q(max_nanos_per_day__gte=0),
                name="autotopup_cap_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"auto top-up of {self.account}"


class TopUpRefund(models.Model):
    """A Stripe refund of a top-up, by Stripe's refund id: refunds made by an
    operator here and refunds made in Stripe's dashboard (``charge.refunded``)
    alike, so each takes credits back once."""

    topup = models.ForeignKey(TopUp, on_delete=models.PROTECT, related_name="refunds")
    stripe_refund_id = models.CharField(max_length=100, unique=True)
    amount_nanos = models.BigIntegerField()
    # The operator who refunded here; none for a refund made in Stripe.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    reason = models.CharField(max_length=500, blank=True)
    # What was taken back; none when nothing of the top-up remained.
    entry = models.ForeignKey(
        LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "top-up refund"
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_nanos__gt=0), name="topuprefund_amount_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"refund {self.stripe_refund_id}"


class TopUpDispute(models.Model):
    """A customer's dispute of a top-up's payment with their bank: its credits
    are taken back when it opens and given back, once, if it is won."""

    topup = models.ForeignKey(TopUp, on_delete=models.PROTECT, related_name="disputes")
    stripe_dispute_id = models.CharField(max_length=100, unique=True)
    amount_nanos = models.BigIntegerField()
    status = models.CharField(max_length=32)
    entry = models.ForeignKey(
        LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    returned_entry = models.ForeignKey(
        LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "top-up dispute"

    def __str__(self) -> str:
        return f"dispute {self.stripe_dispute_id} ({self.status})"


class PaymentMismatch(models.Model):
    """Stripe said a top-up's payment succeeded, for another amount or currency
    than the top-up's. Nothing was credited; an operator looks at it (refund it
    in Stripe, or grant what is due) and marks it resolved."""

    topup = models.ForeignKey(
        TopUp, on_delete=models.PROTECT, related_name="mismatches"
    )
    payment_intent_id = models.CharField(max_length=100, unique=True)
    expected_cents = models.BigIntegerField()
    expected_currency = models.CharField(max_length=3)
    paid_cents = models.BigIntegerField()
    paid_currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(default=timezone.now)
    resolved = models.BooleanField(default=False)
    note = models.TextField(blank=True, help_text="what was done about it")

    class Meta:
        verbose_name = "payment mismatch"
        verbose_name_plural = "payment mismatches"

    def __str__(self) -> str:
        return f"mismatch on {self.payment_intent_id}"
