"""Auto top-up's settings and state: what the customer configures, the cap of
charges per 24 hours, pausing, and the "armed" flag that allows one charge per
crossing of the threshold. The charge itself is in ``autocharge``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from accounts.models import Account, BillingProfile
from billing.errors import InvalidAmount
from billing.models import AutoTopUp, TopUp, TopUpStatus
from billing.payments import stripe_gateway as gateway
from billing.payments.notices import autotopup_paused_tell
from billing.payments.rules import BillingProfileMissing, topup_amount_check
from money import format_usd

logger = logging.getLogger(__name__)

CAP_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Cap:
    charges: int
    nanos: int

    def __str__(self) -> str:
        plural = "" if self.charges == 1 else "s"
        return (
            f"{self.charges} automatic charge{plural} or {format_usd(self.nanos)} "
            "in 24 hours"
        )


def autotopup_cap(row: AutoTopUp) -> Cap:
    """The account's cap: an operator's, else the platform's default."""
    charges = row.max_charges_per_day
    nanos = row.max_nanos_per_day
    return Cap(
        charges=settings.AUTOTOPUP_MAX_CHARGES_PER_DAY if charges is None else charges,
        nanos=settings.AUTOTOPUP_MAX_NANOS_PER_DAY if nanos is None else nanos,
    )


def autotopup_cap_reached(row: AutoTopUp) -> Cap | None:
    """The cap, if one more charge of ``row.amount_nanos`` would pass it."""
    cap = autotopup_cap(row)
    recent = (
        TopUp.objects.filter(
            account_id=row.account_id,
            automatic=True,
            created_at__gte=timezone.now() - CAP_WINDOW,
        )
        # A declined attempt took no money.
        .exclude(status__in=[TopUpStatus.FAILED, TopUpStatus.CANCELED])
        .aggregate(charges=Count("id"), nanos=Sum("amount_nanos"))
    )
    if (
        recent["charges"] + 1 > cap.charges
        or (recent["nanos"] or 0) + row.amount_nanos > cap.nanos
    ):
        return cap
    return None


def autotopup_get(*, account: Account) -> AutoTopUp:
    settings_row, _ = AutoTopUp.objects.get_or_create(account=account)
    return settings_row


@transaction.atomic
def autotopup_configure(
    *,
    account: Account,
    enabled: bool,
    threshold_nanos: int,
    amount_nanos: int,
    payment_method_id: str,
) -> AutoTopUp:
    topup_amount_check(amount_nanos)
    if isinstance(threshold_nanos, bool) or not isinstance(threshold_nanos, int):
        raise InvalidAmount("threshold: must be a USD amount")
    if threshold_nanos < 0:
        raise InvalidAmount("threshold: must not be negative")
    row = AutoTopUp.objects.select_for_update().get_or_create(account=account)[0]
    if enabled:
        if threshold_nanos >= amount_nanos:
            # One top-up must lift a balance just under the threshold above it,
            # or every check would find it below again.
            raise InvalidAmount(
                f"threshold: must be below the amount of each top-up "
                f"({format_usd(amount_nanos)})"
            )
        cap = autotopup_cap(row)
        if amount_nanos > cap.nanos:
            raise InvalidAmount(
                f"amount: auto top-up charges at most {format_usd(cap.nanos)} in "
                "24 hours on this account"
            )
        if not payment_method_id:
            raise InvalidAmount("payment_method: auto top-up needs a saved card")
        if not BillingProfile.objects.filter(account=account).exists():
            raise BillingProfileMissing(
                "billing_profile: add your billing details before enabling auto top-up"
            )
    if payment_method_id:
        gateway.card_get(account=account, payment_method_id=payment_method_id)
    row.enabled = enabled
    row.threshold_nanos = threshold_nanos
    row.amount_nanos = amount_nanos
    row.payment_method_id = payment_method_id or ""
    # Saving the settings again is the customer's word to try again, and to
    # charge when the balance is below the (new) threshold; but not after a
    # dispute or a payment our team checks: only an operator lifts those.
    if not row.paused_by_operator_only:
        row.paused_reason = ""
        row.paused_at = None
        row.armed = True
    row.updated_at = timezone.now()
    row.save()
    return row


OPERATOR_ONLY_NOTE = "; our team has to review it before auto top-up can resume"


def autotopup_pause(
    *, account_id: int, reason: str, operator_only: bool = False
) -> None:
    """Stop automatic charges until the customer saves the settings again (or,
    ``operator_only``, until an operator lifts the pause), and tell them (after
    commit). A pause only an operator may lift is not replaced by another."""
    now = timezone.now()
    rows = AutoTopUp.objects.filter(account_id=account_id)
    if operator_only:
        reason = reason + OPERATOR_ONLY_NOTE
        # Disabled too: enabling it later must not charge either.
        enabled = rows.filter(enabled=True, paused_by_operator_only=False).exists()
        rows.update(
            paused_reason=reason[:300],
            paused_at=now,
            in_flight=None,
            paused_by_operator_only=True,
        )
    else:
        enabled = rows.filter(enabled=True, paused_by_operator_only=False).update(
            paused_reason=reason[:300], paused_at=now, in_flight=None
        )
    if enabled:
        email = Account.objects.select_related("owner").get(pk=account_id).owner.email
        transaction.on_commit(
            lambda: autotopup_paused_tell(email, reason, operator_only=operator_only)
        )


@transaction.atomic
def autotopup_unpause(*, account: Account, actor) -> AutoTopUp | None:
    """An operator lifts any pause (the one a dispute set too): auto top-up may
    charge again when the balance is below the threshold."""
    row = AutoTopUp.objects.select_for_update().filter(account=account).first()
    if row is None:
        return None
    logger.info(
        "auto top-up of account %s unpaused by %s (was: %s)",
        account.pk,
        getattr(actor, "pk", None),
        row.paused_reason,
    )
    row.paused_reason = ""
    row.paused_at = None
    row.paused_by_operator_only = False
    row.armed = True
    row.updated_at = timezone.now()
    row.save()
    return row


def autotopup_release(*, topup: TopUp) -> bool:
    """The attempt ``topup`` is over (paid or not): another may be made. True
    if it was still the attempt in flight."""
    return bool(AutoTopUp.objects.filter(in_flight=topup).update(in_flight=None))


def autotopup_rearm(*, account_id: int, balance_nanos: int) -> bool:
    """The balance was seen at or above the threshold: the next fall below it
    may be charged. True if that re-armed auto top-up."""
    return bool(
        AutoTopUp.objects.filter(
            account_id=account_id, armed=False, threshold_nanos__lte=balance_nanos
        ).update(armed=True)
    )


@transaction.atomic
def autotopup_cap_set(
    *,
    account: Account,
    max_charges_per_day: int | None,
    max_nanos_per_day: int | None,
    actor,
) -> AutoTopUp:
    """An operator's cap for one account; None: the platform's default."""
    if max_charges_per_day is not None and (
        isinstance(max_charges_per_day, bool)
        or not isinstance(max_charges_per_day, int)
        or max_charges_per_day < 0
    ):
        raise InvalidAmount("max_charges_per_day: a whole number, 0 or more")
    if max_nanos_per_day is not None and (
        isinstance(max_nanos_per_day, bool)
        or not isinstance(max_nanos_per_day, int)
        or max_nanos_per_day < 0
    ):
        raise InvalidAmount("max_usd_per_day: a USD amount, 0 or more")
    row = AutoTopUp.objects.select_for_update().get_or_create(account=account)[0]
    row.max_charges_per_day = max_charges_per_day
    row.max_nanos_per_day = max_nanos_per_day
    row.save(update_fields=["max_charges_per_day", "max_nanos_per_day"])
    logger.info(
        "auto top-up cap of account %s set to %s charges, %s nanos by %s",
        account.pk,
        max_charges_per_day,
        max_nanos_per_day,
        getattr(actor, "pk", None),
    )
    return row
