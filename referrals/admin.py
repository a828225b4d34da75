"""Operators see the program's records, read-only: every referral and reward
changes only through the services (signup, top-ups, refunds and disputes),
and refused attempts each have their own list with the reason."""

from __future__ import annotations

from django.contrib import admin

from billing.ledger.admin import ReadOnlyAdmin, usd_column
from referrals.models import (
    Referral,
    ReferralCode,
    ReferralReward,
    ReferralStatus,
    RefusedReferral,
    RefusedReward,
    RewardStatus,
)


@admin.register(ReferralCode)
class ReferralCodeAdmin(ReadOnlyAdmin):
    # The code is shared publicly by its owner: not a secret.
    list_display = ("account", "code", "created_at")
    list_select_related = ("account__owner",)
    search_fields = ("account__owner__email", "code")


@admin.register(Referral)
class ReferralAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "referrer",
        "referee",
        "status",
        "refused_reason",
    )
    list_filter = ("status", "refused_reason")
    list_select_related = ("referrer__owner", "referee__owner")
    search_fields = ("referrer__owner__email", "referee__owner__email", "code")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")


_REWARD_COLUMNS = (
    "created_at",
    "referrer",
    "referee",
    "topup",
    "status",
    usd_column("amount_nanos", "granted"),
    usd_column("revoked_nanos", "revoked"),
    "refused_reason",
    "revoked_by",
)


class _RewardAdmin(ReadOnlyAdmin):
    list_display = _REWARD_COLUMNS
    list_select_related = ("referrer__owner", "referral__referee__owner", "topup")
    search_fields = (
        "referrer__owner__email",
        "referral__referee__owner__email",
        "revoked_by",
    )
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")

    @admin.display(description="referee")
    def referee(self, obj):
        return obj.referral.referee


@admin.register(ReferralReward)
class ReferralRewardAdmin(_RewardAdmin):
    list_filter = ("status", "refused_reason")


@admin.register(RefusedReferral)
class RefusedReferralAdmin(ReferralAdmin):
    list_filter = ("refused_reason",)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(status=ReferralStatus.REFUSED)


@admin.register(RefusedReward)
class RefusedRewardAdmin(_RewardAdmin):
    list_filter = ("refused_reason",)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(status=RewardStatus.REFUSED)
