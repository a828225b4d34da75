"""Reads for the AI Insurance page and API, the rules in force, and what a
request or a history entry has to do with insurance."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, QuerySet, Sum
from django.utils import timezone

from accounts.models import Account
from insurance.coverage import RuleBook
from insurance.models import CLAIM_WINDOW, Claim, CoverageRule, Payout, RuleKind


def rule_book() -> RuleBook:
    return RuleBook(CoverageRule.objects.all())


KIND_LABELS = {**dict(RuleKind.choices), "claim": "Claim"}


@dataclass(frozen=True)
class Group:
    key: str
    label: str
    count: int
    total_nanos: int


@dataclass(frozen=True)
class Summary:
    total_nanos: int
    count: int
    by_rule: list[Group]
    by_model: list[Group]

    @property
    def average_nanos(self) -> int:
        """Per payout, rounded down to a whole nano; 0 when none."""
        return self.total_nanos // self.count if self.count else 0


def insurance_summary(*, account: Account) -> Summary:
    """Everything insurance paid the account: the total, how many requests,
    and the same by rule (a claim counts as its own) and by model, the
    largest first."""
    payouts = Payout.objects.filter(account=account)

    def groups(field: str) -> list[Group]:
        rows = (
            payouts.values(field)
            .annotate(count=Count("id"), total=Sum("amount_nanos"))
            .order_by("-total", field)
        )
        return [
            Group(
                key=row[field],
                label=KIND_LABELS.get(row[field], row[field])
                if field == "kind"
                else row[field],
                count=row["count"],
                total_nanos=row["total"],
            )
            for row in rows
        ]

    totals = payouts.aggregate(count=Count("id"), total=Sum("amount_nanos"))
    return Summary(
        total_nanos=totals["total"] or 0,
        count=totals["count"],
        by_rule=groups("kind"),
        by_model=groups("model"),
    )


def payouts_list(*, account: Account, entry_id: int | None = None) -> QuerySet:
    """The account's covered requests, newest request first; only those paid
    by one journal entry when ``entry_id`` is given."""
    payouts = Payout.objects.filter(account=account)
    if entry_id is not None:
        payouts = payouts.filter(entry_id=entry_id)
    return payouts.order_by("-request_created_at", "-id")


def claims_list(*, account: Account) -> QuerySet:
    return (
        Claim.objects.filter(account=account)
        .select_related("payout")
        .order_by("-created_at", "-id")
    )


@dataclass(frozen=True)
class RequestCover:
    """What insurance says of one request: its claim, its payout."""

    claim: Claim | None
    payout: Payout | None
    claimable: bool = False


def request_cover(
    *,
    account: Account,
    request_id: uuid.UUID,
    created_at: datetime | None = None,
    cost_nanos: int = 0,
    now: datetime | None = None,
) -> RequestCover:
    """A request's claim and payout, and (given when it was made and what it
    cost) whether the customer may claim it now: within the claim window, not
    free, neither claimed nor paid yet."""
    claim = Claim.objects.filter(account=account, request_id=request_id).first()
    payout = Payout.objects.filter(account=account, request_id=request_id).first()
    claimable = (
        claim is None
        and payout is None
        and created_at is not None
        and cost_nanos > 0
        and created_at >= (now or timezone.now()) - CLAIM_WINDOW
    )
    return RequestCover(claim=claim, payout=payout, claimable=claimable)


def claim_payout(claim: Claim) -> Payout | None:
    """What an accepted claim's request was paid: by the claim, or before it
    by the daily run (the request is paid once)."""
    try:
        return claim.payout
    except Payout.DoesNotExist:
        pass
    if claim.status != "accepted":
        return None
    return Payout.objects.filter(request_id=claim.request_id).first()
