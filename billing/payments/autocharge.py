"""Auto top-up's charge: one off-session payment when the balance falls below
the threshold, at most once per crossing, never two at once, within the cap.

``autotopup_run`` is the one place that decides to charge. Everything that
asks for auto top-up calls it: the settle path (a Celery task queued when a
settlement leaves the balance below the threshold), the periodic sweep, and
tests. Under the auto top-up row's lock it:

1. re-arms auto top-up if the balance is at or above the threshold (the
   crossing back up that allows the next charge), and stops there;
2. stops if auto top-up is not armed (this crossing was charged already);
3. pauses auto top-up and tells the customer if one more charge would pass the
   cap of the last 24 hours;
4. otherwise claims the attempt (the in-flight top-up) and disarms, then
   charges the saved card outside the lock.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone

from accounts.models import Account
from billing.errors import BillingError
from billing.models import AutoTopUp, TopUp, TopUpMethod, TopUpStatus, Wallet
from billing.payments import stripe_gateway as gateway
from billing.payments.autotopup import (
    autotopup_cap_reached,
    autotopup_pause,
    autotopup_rearm,
)
from billing.payments.rules import NANOS_PER_CENT, bonus_for
from billing.payments.topups import (
    topup_check,
    topup_fail,
    topup_failed,
    topup_intent_record,
)

STUCK_AFTER = timedelta(minutes=10)


def autotopup_run(*, account_id: int) -> TopUp | None:
    """Charge the saved card once, off-session, if the balance is below the
    threshold and this crossing was not charged yet. The attempt is claimed in
    the database first (the in-flight top-up), so two workers or a retried task
    never charge twice; a decline pauses auto top-up until the customer saves
    its settings again."""
    with transaction.atomic():
        row = (
            AutoTopUp.objects.select_for_update()
            .filter(account_id=account_id, enabled=True, paused_at=None, in_flight=None)
            .first()
        )
        if row is None:
            return None
        # The balance, not what is available: workers' leases and requests in
        # flight hold credits for a moment without spending them.
        balance = Wallet.objects.get(account_id=account_id).total_nanos
        if balance >= row.threshold_nanos:
            autotopup_rearm(account_id=account_id, balance_nanos=balance)
            return None
        if not row.armed:
            return None  # charged once already since it fell below
        cap = autotopup_cap_reached(row)
        if cap is not None:
            autotopup_pause(
                account_id=account_id,
                reason=f"it reached this account's limit of {cap}",
            )
            return None
        topup = TopUp.objects.create(
            account_id=account_id,
            amount_nanos=row.amount_nanos,
            bonus_nanos=bonus_for(row.amount_nanos),
            method=TopUpMethod.CARD,
            payment_method_id=row.payment_method_id,
            automatic=True,
        )
        row.in_flight = topup
        row.armed = False
        row.save(update_fields=["in_flight", "armed"])
    account = Account.objects.get(pk=account_id)
    try:
        intent = gateway.payment_intent_create(
            account=account,
            amount_cents=topup.amount_nanos // NANOS_PER_CENT,
            method=TopUpMethod.CARD,
            payment_method_id=topup.payment_method_id,
            confirm=True,
            off_session=True,
            idempotency_key=f"topup:{topup.pk}",
            metadata={"topup": str(topup.pk), "account": str(account_id), "auto": "1"},
        )
    except BillingError as error:
        with transaction.atomic():
            locked = TopUp.objects.select_for_update().get(pk=topup.pk)
            topup_fail(locked, code=error.code, message=str(error))
        return topup
    topup_intent_record(topup, intent)
    if intent.status == "succeeded":
        return topup_check(topup=topup)
    if intent.error_code or intent.status in (
        "requires_action",
        "requires_payment_method",
    ):
        return topup_failed(
            payment_intent_id=intent.id,
            metadata_topup=str(topup.pk),
            code=intent.error_code or intent.status,
            message=intent.error_message or "the bank asked for authentication",
        )
    return topup  # processing: the webhook finishes it


def autotopup_unstick() -> int:
    """Attempts in flight for too long (a worker died between claiming and
    paying, or the answer was lost): ask Stripe, and finish them either way."""
    cutoff = timezone.now() - STUCK_AFTER
    finished = 0
    stuck = AutoTopUp.objects.filter(in_flight__created_at__lt=cutoff).select_related(
        "in_flight"
    )
    for row in stuck:
        topup = row.in_flight
        if topup.payment_intent_id and topup_check(topup=topup).status == (
            TopUpStatus.SUCCEEDED
        ):
            finished += 1
            continue
        with transaction.atomic():
            locked = TopUp.objects.select_for_update().get(pk=topup.pk)
            if locked.status not in (TopUpStatus.SUCCEEDED, TopUpStatus.MISMATCH):
                topup_fail(
                    locked,
                    code="unfinished",
                    message="the automatic payment did not finish",
                )
        finished += 1
    return finished


def autotopup_sweep() -> int:
    """Run auto top-up for every account that has something to do: below its
    threshold and armed (the settle path asks too; this catches the rest), or
    at or above it and not armed (to re-arm)."""
    autotopup_unstick()
    balance = Wallet.objects.filter(account_id=OuterRef("account_id")).values(
        total=F("topup_nanos") + F("bonus_nanos")
    )[:1]
    due = (
        AutoTopUp.objects.filter(enabled=True, paused_at=None, in_flight=None)
        .annotate(balance=Subquery(balance))
        .filter(
            Q(armed=True, balance__lt=F("threshold_nanos"))
            | Q(armed=False, balance__gte=F("threshold_nanos"))
        )
    )
    started = 0
    for account_id in due.values_list("account_id", flat=True).iterator():
        if autotopup_run(account_id=account_id):
            started += 1
    return started
