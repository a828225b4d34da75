"""Payments' records: top-ups by Stripe PaymentIntent, auto top-up's settings
and state, refunds, disputes, and payments whose amount differs."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Account
from billing.ledger.models import LedgerEntry
from invoices.models import Invoice


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


class TopUpPurpose(models.TextChoices):
    # Credits for the payer: a top-up lot, its bonus and an invoice.
    CREDITS = "credits", "Credits"
    # Sold by an app above billing (billing.payments.purposes).
    GIFT_CARD = "gift_card", "Gift card"


class TopUp(models.Model):
    """One payment for credits, by Stripe PaymentIntent. Credited once, from the
    verified ``payment_intent.succeeded`` webhook (or an equal server check)."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    amount_nanos = models.BigIntegerField()
    bonus_nanos = models.BigIntegerField(default=0)
    method = models.CharField(max_length=8, choices=TopUpMethod.choices)
    purpose = models.CharField(
        max_length=16,
        choices=TopUpPurpose.choices,
        default=TopUpPurpose.CREDITS,
        db_default=TopUpPurpose.CREDITS,
    )
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
    # Its invoice, once credited: set in the crediting transaction under the
    # top-up's row lock, so a top-up gets one invoice (billing.payments.invoicing).
    invoice = models.OneToOneField(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
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
    # The pause needs an operator (a dispute, a payment for another amount):
    # saving the settings again does not lift it; the admin action does.
    paused_by_operator_only = models.BooleanField(default=False)
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


class SelfRefundStatus(models.TextChoices):
    REFUNDING = "refunding", "Refunding"
    REFUNDED = "refunded", "Refunded"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


class SelfRefund(models.Model):
    """A customer's own refund of a fresh top-up (billing.payments.self_refunds).

    Its credits are taken when it is requested (``entry``), in the transaction
    that writes this row; Stripe's refund then ends it as refunded, or as
    failed or canceled, which gives the credits back once (``returned_entry``).
    """

    topup = models.ForeignKey(
        TopUp, on_delete=models.PROTECT, related_name="self_refunds"
    )
    status = models.CharField(
        max_length=16,
        choices=SelfRefundStatus.choices,
        default=SelfRefundStatus.REFUNDING,
    )
    # Paid back to the card, and the fee the platform keeps: whole cents. Both
    # left the top-up's credits (``entry``).
    amount_nanos = models.BigIntegerField()
    fee_nanos = models.BigIntegerField()
    # What the account had spent since the payment when it was asked for.
    usage_nanos = models.BigIntegerField(default=0)
    # Set once Stripe has answered (or its webhook named it first).
    stripe_refund_id = models.CharField(
        max_length=100, null=True, blank=True, unique=True
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    entry = models.ForeignKey(
        LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    returned_entry = models.ForeignKey(
        LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    failure_message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "self-service refund"
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_nanos__gt=0) & Q(fee_nanos__gte=0),
                name="selfrefund_amounts",
            ),
            # A second request of one top-up waits for the first to end.
            models.UniqueConstraint(
                fields=["topup"],
                condition=Q(status="refunding"),
                name="selfrefund_one_in_progress",
            ),
        ]
        indexes = [
            models.Index(
                "created_at",
                name="selfrefund_in_progress",
                condition=Q(status="refunding"),
            )
        ]

    def __str__(self) -> str:
        return f"self-service refund {self.pk} ({self.status})"

    @property
    def taken_nanos(self) -> int:
        return self.amount_nanos + self.fee_nanos


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


__all__ = [
    "TopUpStatus",
    "TopUpMethod",
    "TopUpPurpose",
    "TopUp",
    "AutoTopUp",
    "TopUpRefund",
    "SelfRefundStatus",
    "SelfRefund",
    "TopUpDispute",
    "PaymentMismatch",
]
