"""Insurance's writes: the daily payout of an account's covered requests,
filing a claim, and an operator's decision on it.

Every payout takes the account's wallet lock first (``wallet_lock``, the lock
every change of a balance takes) and only then asks which of its requests are
paid already: the daily run and an accepted claim on the same request run one
after the other, and the second sees the first's payout. The unique
``Payout.request_id`` stands behind that: a request is paid once, ever."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Account, User
from accounts.validators import unsafe_character, unsafe_character_message
from billing.ledger.grants import credit_grant
from billing.ledger.wallets import wallet_lock
from billing.models import LedgerEntry, LotSource
from insurance.errors import (
    AlreadyCompensated,
    ClaimDecided,
    ClaimExists,
    ClaimWindowClosed,
    NothingToCompensate,
    ReasonInvalid,
)
from insurance.models import CLAIM_WINDOW, Claim, ClaimStatus, Payout
from insurance.scan import Covered, covered_on
from insurance.selectors import rule_book
from money import format_usd
from proxy.selectors import request_log_get

# What the history shows beside the entry's kind (the journal's ``method``).
METHOD = "AI insurance"
REASON_MAX_LENGTH = 2000


def compensation_expiry(now: datetime | None = None) -> datetime | None:
    days = settings.INSURANCE_COMPENSATION_EXPIRY_DAYS
    if days <= 0:
        return None
    return (now or timezone.now()) + timedelta(days=days)


def day_key(day: date) -> str:
    """The idempotency key of an account's payout for ``day``: one a day."""
    return f"insurance:{day.isoformat()}"


def insurance_day_pay(*, day: date) -> list[LedgerEntry]:
    """Pay the covered requests of the UTC ``day``: one compensation entry
    (and lot) per account, each in its own transaction. Run again, it pays
    nothing more. Returns the entries it made."""
    covered = covered_on(day=day, book=rule_book())
    accounts = Account.objects.in_bulk(list(covered))
    entries = []
    for account_id in sorted(covered):
        entry = account_day_pay(
            account=accounts[account_id], day=day, covered=covered[account_id]
        )
        if entry is not None:
            entries.append(entry)
    return entries


@transaction.atomic
def account_day_pay(
    *, account: Account, day: date, covered: list[Covered]
) -> LedgerEntry | None:
    """One account's payout for ``day``: the requests of ``covered`` not paid
    yet, in one compensation entry, each recorded as a ``Payout`` of it. None
    when there is nothing to pay, or the day was paid already."""
    wallet_lock(account)
    key = day_key(day)
    if LedgerEntry.objects.filter(account=account, idempotency_key=key).exists():
        # Paid by an earlier run. A covered request logged after that run
        # (a stream still running when it ran) is not added to the day's
        # lot: the customer may claim it.
        return None
    paid = set(
        Payout.objects.filter(
            request_id__in=[item.log.id for item in covered]
        ).values_list("request_id", flat=True)
    )
    due = [item for item in covered if item.log.id not in paid]
    if not due:
        return None
    total = sum(item.amount_nanos for item in due)
    requests = "request" if len(due) == 1 else "requests"
    entry = credit_grant(
        account=account,
        source=LotSource.COMPENSATION,
        amount_nanos=total,
        reason=f"AI insurance: {len(due)} covered {requests} on {day.isoformat()}",
        actor=None,
        idempotency_key=key,
        expires_at=compensation_expiry(),
        reference=key,
        method=METHOD,
    )
    Payout.objects.bulk_create(
        Payout(
            account=account,
            request_id=item.log.id,
            request_created_at=item.log.created_at,
            model=item.log.model,
            kind=item.rule.kind,
            cost_nanos=item.log.cost_nanos,
            payout_percent=item.rule.payout_percent,
            amount_nanos=item.amount_nanos,
            entry=entry,
            created_at=entry.created_at,
        )
        for item in due
    )
    return entry


def _reason_check(reason: str | None, field: str = "reason") -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ReasonInvalid(field, "A reason is required.")
    if len(reason) > REASON_MAX_LENGTH:
        raise ReasonInvalid(field, f"At most {REASON_MAX_LENGTH} characters.")
    char = unsafe_character(reason, multiline=True)
    if char is not None:
        raise ReasonInvalid(field, unsafe_character_message(char))
    return reason


@transaction.atomic
def claim_file(
    *,
    account: Account,
    log_id: uuid.UUID,
    reason: str,
    now: datetime | None = None,
) -> Claim:
    """File the account's claim on one of its requests. RequestLog.DoesNotExist
    for another account's or an unknown request; refused (``InsuranceError``)
    past the claim window, for a request that cost nothing, one claimed
    already or one already paid by the daily run."""
    reason = _reason_check(reason)
    log = request_log_get(account=account, log_id=log_id)
    now = now or timezone.now()
    if log.created_at < now - CLAIM_WINDOW:
        raise ClaimWindowClosed(
            f"Claims are accepted within {CLAIM_WINDOW.days} days of a request; "
            f"this one was made on {log.created_at:%Y-%m-%d %H:%M} UTC."
        )
    if log.cost_nanos <= 0:
        raise NothingToCompensate(
            "This request cost nothing, so there is nothing to compensate."
        )
    existing = Claim.objects.filter(request_id=log.id).first()
    if existing is not None:
        raise _claimed(existing)
    if Payout.objects.filter(request_id=log.id).exists():
        raise AlreadyCompensated(
            "This request has already been compensated by AI insurance."
        )
    try:
        with transaction.atomic():
            return Claim.objects.create(
                account=account,
                request_id=log.id,
                request_created_at=log.created_at,
                model=log.model,
                cost_nanos=log.cost_nanos,
                reason=reason,
                created_at=now,
            )
    except IntegrityError:
        # Filed at the same moment by another call.
        raise _claimed(Claim.objects.get(request_id=log.id)) from None


def _claimed(claim: Claim) -> ClaimExists:
    return ClaimExists(
        f"This request has already been claimed (claim #{claim.pk}, "
        f"{claim.get_status_display().lower()}); a request can be claimed once."
    )


@transaction.atomic
def claim_accept(*, claim_id: int, actor: User | None) -> Claim:
    """Accept a pending claim and pay the request's cost at once, as its own
    compensation entry (idempotency key ``claim:<id>``). A request the daily
    run paid already is not paid again: the claim is accepted with nothing
    more to pay, and says so."""
    claim = Claim.objects.select_for_update().get(pk=claim_id)
    if claim.status != ClaimStatus.PENDING:
        raise ClaimDecided(f"Claim #{claim.pk} was already {claim.status}.")
    wallet_lock(claim.account)
    now = timezone.now()
    claim.status = ClaimStatus.ACCEPTED
    claim.decided_by = actor
    claim.decided_at = now
    paid = Payout.objects.filter(request_id=claim.request_id).first()
    if paid is not None:
        claim.decision_reason = (
            f"Already compensated {format_usd(paid.amount_nanos, 6)} by AI "
            f"insurance on {paid.created_at:%Y-%m-%d}."
        )
        claim.save()
        return claim
    key = f"claim:{claim.pk}"
    entry = credit_grant(
        account=claim.account,
        source=LotSource.COMPENSATION,
        amount_nanos=claim.cost_nanos,
        reason=f"AI insurance claim #{claim.pk}: request {claim.request_id}",
        actor=actor,
        idempotency_key=key,
        expires_at=compensation_expiry(now),
        reference=key,
        method=METHOD,
    )
    Payout.objects.create(
        account=claim.account,
        request_id=claim.request_id,
        request_created_at=claim.request_created_at,
        model=claim.model,
        kind="claim",
        cost_nanos=claim.cost_nanos,
        payout_percent=100,
        amount_nanos=claim.cost_nanos,
        entry=entry,
        claim=claim,
        created_at=entry.created_at,
    )
    claim.save()
    return claim


@transaction.atomic
def claim_decline(*, claim_id: int, actor: User | None, reason: str) -> Claim:
    """Decline a pending claim; the reason is shown to the customer."""
    reason = _reason_check(reason)
    claim = Claim.objects.select_for_update().get(pk=claim_id)
    if claim.status != ClaimStatus.PENDING:
        raise ClaimDecided(f"Claim #{claim.pk} was already {claim.status}.")
    claim.status = ClaimStatus.DECLINED
    claim.decision_reason = reason
    claim.decided_by = actor
    claim.decided_at = timezone.now()
    claim.save()
    return claim
