"""Gift cards (bought by customers, paid like a top-up), promotion codes
(minted by operators), their redemptions, and the per-account guard against
guessing codes. Codes are stored only as digests (``gifts.codes``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Account
from billing.models import LedgerEntry, TopUp
from money import format_usd


class GiftCardStatus(models.TextChoices):
    PENDING = "pending", "Awaiting payment"
    ACTIVE = "active", "Active"
    REDEEMED = "redeemed", "Redeemed"
    # Refunded to the buyer (by the buyer within 24 h, or by an operator).
    REFUNDED = "refunded", "Refunded"
    # Its payment is disputed: not redeemable unless the dispute is won.
    DISPUTED = "disputed", "Disputed"


class GiftCard(models.Model):
    """One card: a payment (a ``TopUp`` whose purpose is a gift card, no bonus)
    and, once paid, a single-use code worth its amount. Bound to
    ``recipient_email`` (only that registered user redeems it; we email the
    code there) or, without one, a bearer card whose code the buyer sees once.
    """

    buyer = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    topup = models.OneToOneField(TopUp, on_delete=models.PROTECT, related_name="+")
    amount_nanos = models.BigIntegerField()
    recipient_email = models.EmailField(blank=True)
    status = models.CharField(
        max_length=10, choices=GiftCardStatus.choices, default=GiftCardStatus.PENDING
    )
    # Made once, when the code is first handed over (to the buyer or emailed).
    code_digest = models.CharField(max_length=64, null=True, blank=True, unique=True)
    code_last4 = models.CharField(max_length=4, blank=True)
    code_issued_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)
    redeemed_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    refund_nanos = models.BigIntegerField(default=0)
    refund_fee_nanos = models.BigIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["buyer", "created_at"], name="giftcard_buyer_day"),
            models.Index(
                fields=["paid_at"],
                name="giftcard_to_email",
                condition=Q(status="active", emailed_at__isnull=True)
                & ~Q(recipient_email=""),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_nanos__gt=0), name="giftcard_amount_positive"
            ),
        ]

    def __str__(self) -> str:
        shown = f" …{self.code_last4}" if self.code_last4 else ""
        return f"gift card {self.pk} ({format_usd(self.amount_nanos)}{shown})"


class PromotionKind(models.TextChoices):
    # ``count`` codes, each redeemed once.
    CODES = "codes", "Single-use codes"
    # One code for everyone, up to ``max_redemptions`` accounts.
    SHARED = "shared", "One shared code"


class PromotionBatch(models.Model):
    """Promotion codes an operator minted: credits shown as Discount in the
    history, one per account per batch, until ``expires_at``. The codes are
    shown to the operator once, when minted (a CSV download)."""

    name = models.CharField(max_length=100)
    amount_nanos = models.BigIntegerField()
    kind = models.CharField(
        max_length=8, choices=PromotionKind.choices, default=PromotionKind.CODES
    )
    count = models.PositiveIntegerField(
        default=1, help_text="Single-use codes: how many to mint."
    )
    max_redemptions = models.PositiveIntegerField(
        default=1, help_text="A shared code: how many accounts may redeem it."
    )
    expires_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    minted_at = models.DateTimeField(null=True, blank=True)
    disabled = models.BooleanField(default=False)

    class Meta:
        verbose_name_plural = "promotion batches"
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_nanos__gt=0), name="promotion_amount_positive"
            ),
            models.CheckConstraint(
                condition=Q(count__gte=1) & Q(max_redemptions__gte=1),
                name="promotion_counts_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({format_usd(self.amount_nanos)})"

    @property
    def uses_per_code(self) -> int:
        return self.max_redemptions if self.kind == PromotionKind.SHARED else 1


class PromotionCode(models.Model):
    batch = models.ForeignKey(
        PromotionBatch, on_delete=models.PROTECT, related_name="codes"
    )
    code_digest = models.CharField(max_length=64, unique=True)
    code_last4 = models.CharField(max_length=4)
    redemptions = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.batch.name} …{self.code_last4}"


class RedemptionKind(models.TextChoices):
    GIFT = "gift", "Gift card"
    DISCOUNT = "discount", "Promotion (Discount)"


class Redemption(models.Model):
    """A code turned into credits: one Gift lot (bonus pool), one journal entry."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=8, choices=RedemptionKind.choices)
    gift_card = models.OneToOneField(
        GiftCard,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="redemption",
    )
    promotion_code = models.ForeignKey(
        PromotionCode, null=True, blank=True, on_delete=models.PROTECT
    )
    batch = models.ForeignKey(
        PromotionBatch,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="redemptions",
    )
    amount_nanos = models.BigIntegerField()
    entry = models.ForeignKey(LedgerEntry, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["batch", "account"],
                condition=Q(batch__isnull=False),
                name="promotion_once_per_account",
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind="gift", gift_card__isnull=False, batch__isnull=True)
                    | Q(kind="discount", gift_card__isnull=True, batch__isnull=False)
                ),
                name="redemption_of_one_thing",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "created_at"], name="redemption_account")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {format_usd(self.amount_nanos)}"


class RedeemGuard(models.Model):
    """Wrong codes of one account: after REDEEM_FAILURE_LIMIT in a row, no
    redemption until ``locked_until``. One row per account that ever tried a
    code; its lock serialises the account's attempts."""

    account = models.OneToOneField(
        Account, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    lockouts = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "redemption lockout"

    def __str__(self) -> str:
        return f"wrong codes of {self.account}"
