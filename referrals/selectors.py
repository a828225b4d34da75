"""Reads for the Referrals page and API: the account's link, how many signed
up with it, what it earned, and its rewards."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import F, Sum

from accounts.models import Account
from referrals.models import (
    Referral,
    ReferralCode,
    ReferralReward,
    ReferralStatus,
    RefusalReason,
    RewardStatus,
)

# What a referrer is told of a refused reward. Abuse checks stay vague: the
# operators' admin has the reason.
_REFUSAL_SHOWN = {
    RefusalReason.MONTHLY_CAP: "Monthly cap reached",
    RefusalReason.REVERSED: "Order refunded or disputed",
}


@dataclass(frozen=True)
class Summary:
    code: str
    link: str
    signups: int
    earned_nanos: int  # granted, net of revocations
    rewards_count: int


@dataclass(frozen=True)
class RewardRow:
    id: int
    created_at: object
    referee: str  # masked
    topup_nanos: int
    status: str
    amount_nanos: int
    revoked_nanos: int
    note: str

    @property
    def net_nanos(self) -> int:
        return self.amount_nanos - self.revoked_nanos


def referral_link(code: str) -> str:
    return f"{settings.SITE_URL.rstrip('/')}/signup?ref={code}"


def referral_summary(*, account: Account, code: ReferralCode) -> Summary:
    rewards = ReferralReward.objects.filter(referrer=account)
    earned = rewards.aggregate(net=Sum(F("amount_nanos") - F("revoked_nanos")))["net"]
    return Summary(
        code=code.code,
        link=referral_link(code.code),
        signups=Referral.objects.filter(
            referrer=account, status=ReferralStatus.ACTIVE
        ).count(),
        earned_nanos=earned or 0,
        rewards_count=rewards.count(),
    )


def email_masked(email: str) -> str:
    """ "ca•••@example.com": enough for the referrer to recognise a friend."""
    local, _, domain = email.rpartition("@")
    return f"{local[:2]}•••@{domain}"


def referral_rewards(*, account: Account, limit: int = 50) -> list[RewardRow]:
    """The account's rewards as a referrer, newest first."""
    rows = (
        ReferralReward.objects.filter(referrer=account)
        .select_related("referral__referee__owner", "topup")
        .order_by("-created_at", "-id")[:limit]
    )
    return [
        RewardRow(
            id=row.pk,
            created_at=row.created_at,
            referee=email_masked(row.referral.referee.owner.email),
            topup_nanos=row.topup.amount_nanos,
            status=row.status,
            amount_nanos=row.amount_nanos,
            revoked_nanos=row.revoked_nanos,
            note=_note(row),
        )
        for row in rows
    ]


def _note(row: ReferralReward) -> str:
    if row.status == RewardStatus.REFUSED:
        return _REFUSAL_SHOWN.get(row.refused_reason, "Not eligible")
    if row.status == RewardStatus.REVOKED:
        kind = row.revoked_by.split(" ", 1)[0]
        return "Order disputed" if kind == "dispute" else "Order refunded"
    return ""
