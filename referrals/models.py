"""The referral program's records: each account's code, who signed up with
whose code, and one reward (paid, revoked or refused) per top-up a referee
paid. The credits themselves are the ledger's (a referral grant per reward, a
revocation that reverses it); these rows say why each one was made."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import Account
from billing.models import LedgerEntry, TopUp


class ReferralCode(models.Model):
    """The code of an account's referral link (``/signup?ref=CODE``)."""

    account = models.OneToOneField(
        Account, on_delete=models.PROTECT, primary_key=True, related_name="+"
    )
    code = models.CharField(max_length=32, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"referral code of {self.account}"


class RefusalReason(models.TextChoices):
    # A referral refused at signup.
    SELF = "self", "Self-referral: the same account"
    SAME_EMAIL = "same_email", "Self-referral: the same email (alias)"
    # A reward refused.
    SAME_CARD = "same_card", "Paid with a card the referrer uses"
    MONTHLY_CAP = "monthly_cap", "The referrer's monthly cap was reached"
    REVERSED = "reversed", "The order was refunded or disputed before the reward"


class ReferralStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    REFUSED = "refused", "Refused"


class Referral(models.Model):
    """A signup with another account's code: one per referee, kept even when
    refused (a self-referral), so that the referee is never referred again."""

    referrer = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="referrals_made"
    )
    referee = models.OneToOneField(
        Account, on_delete=models.PROTECT, related_name="referral"
    )
    code = models.CharField(max_length=32)
    status = models.CharField(
        max_length=8, choices=ReferralStatus.choices, default=ReferralStatus.ACTIVE
    )
    refused_reason = models.CharField(
        max_length=16, choices=RefusalReason.choices, blank=True
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(
                fields=["referrer", "status", "created_at"], name="referral_referrer"
            )
        ]

    def __str__(self) -> str:
        return f"{self.referee} referred by {self.referrer}"


class RewardStatus(models.TextChoices):
    EARNED = "earned", "Earned"
    REVOKED = "revoked", "Revoked"
    REFUSED = "refused", "Refused"


class ReferralReward(models.Model):
    """The referrer's reward for one top-up its referee paid: earned (a
    referral grant), then perhaps revoked (what remained of it taken back when
    the top-up was refunded or disputed), or refused with the reason."""

    referral = models.ForeignKey(
        Referral, on_delete=models.PROTECT, related_name="rewards"
    )
    # Denormalised from the referral: the monthly cap and the referrer's page
    # read rewards by referrer.
    referrer = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    topup = models.OneToOneField(
        TopUp, on_delete=models.PROTECT, related_name="referral_reward"
    )
    status = models.CharField(max_length=8, choices=RewardStatus.choices)
    # What was granted (0 if refused), and what of it was taken back.
    amount_nanos = models.BigIntegerField(default=0)
    revoked_nanos = models.BigIntegerField(default=0)
    refused_reason = models.CharField(
        max_length=16, choices=RefusalReason.choices, blank=True
    )
    entry = models.OneToOneField(
        LedgerEntry,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    revocation_entry = models.OneToOneField(
        LedgerEntry,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # What revoked it: "refund re_…" or "dispute dp_…".
    revoked_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["referrer", "created_at"], name="referralreward_referrer"
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount_nanos__gte=0)
                & models.Q(revoked_nanos__gte=0)
                & models.Q(revoked_nanos__lte=models.F("amount_nanos")),
                name="referralreward_amounts_sane",
            ),
        ]

    def __str__(self) -> str:
        return f"referral reward for top-up {self.topup_id} ({self.status})"

    @property
    def net_nanos(self) -> int:
        return self.amount_nanos - self.revoked_nanos


class RefusedReferral(Referral):
    """Admin's list of self-referrals refused at signup."""

    class Meta:
        proxy = True
        verbose_name = "refused referral"


class RefusedReward(ReferralReward):
    """Admin's list of rewards refused, with the reason."""

    class Meta:
        proxy = True
        verbose_name = "refused reward"
