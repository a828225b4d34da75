"""Self-service refunds: a customer refunds a top-up of the last 24 hours
(``SELF_REFUND_WINDOW_HOURS``) from the history, for a fee.

What comes back, in whole cents (``self_refund_quote``):

    refundable = the top-up's amount
                 − what the account spent since that payment (its usage
                   entries since ``succeeded_at``, up to the amount)
                 − what of the top-up was refunded already (to the card, and
                   the fees kept by earlier self-service refunds),
                 rounded down to a whole cent;
    fee        = SELF_REFUND_FEE_RATE (5%) of it, rounded up to a whole cent;
    paid back  = refundable − fee.

What leaves the ledger: the whole refundable (paid back + fee) is taken from
the top-up's own credits by the claw-back rule of every refund
(``refunds.topup_take_back``): the fee is kept by the platform and its credits are
gone too. The bonus on it is forfeited in proportion, and the programs above
hear of it (``topup_reversed``: a referral reward is revoked). It is refused,
with the reason, unless what remains of the top-up's own credits and what is
available (not held by requests in flight) both cover the refundable.

Money and credits move once:

1. ``self_refund_request`` takes the credits and writes the refund, in one
   transaction, with the top-up's row and the wallet locked: a double click,
   or two requests at once, make one refund (the second is refused as in
   progress; the database allows one refund in progress per top-up);
2. Stripe is asked outside any lock, with an idempotency key of the refund;
3. Stripe's answer, its webhook (``charge.refunded``, ``charge.refund.updated``)
   or the periodic check (``self_refunds_resolve``) ends it, once, under the
   refund's row lock: refunded; or failed or canceled, which gives the credits
   back by one reversal of the entry that took them. Refunded means Stripe
   told us so by its webhook or when asked back, not only in its first answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from billing.errors import (
    RefundFailed,
    RefundInProgress,
    RefundUncertain,
    SelfRefundRefused,
)
from billing.ledger.reversals import entry_reverse
from billing.ledger.wallets import wallet_lock
from billing.models import (
    AutoTopUp,
    CreditLot,
    EntryKind,
    LedgerEntry,
    LotSource,
    SelfRefund,
    SelfRefundStatus,
    TopUp,
    TopUpPurpose,
    TopUpStatus,
)
from billing.payments import stripe_gateway as gateway
from billing.payments.autotopup import autotopup_pause
from billing.payments.purposes import Reversal
from billing.payments.refunds import topup_take_back
from billing.payments.rules import NANOS_PER_CENT, refund_fee_nanos
from money import format_usd

logger = logging.getLogger(__name__)

# Stripe's refund statuses and where they leave a self-service refund.
_STRIPE_ENDS = {
    "succeeded": SelfRefundStatus.REFUNDED,
    "failed": SelfRefundStatus.FAILED,
    "canceled": SelfRefundStatus.CANCELED,
}
# Stripe's webhook normally ends a refund within seconds; the periodic check
# asks Stripe about those still in progress after this long.
RESOLVE_AFTER = timedelta(minutes=5)
# Stripe keeps an idempotency key for 24 hours: a refund Stripe never named is
# asked for again with its key only within them.
_IDEMPOTENCY_KEPT = timedelta(hours=23)


@dataclass(frozen=True)
class Quote:
    """What a self-service refund of a top-up would be now."""

    usage_nanos: int  # spent since the payment, up to the amount
    already_nanos: int  # refunded before, fees kept included
    refundable_nanos: int  # whole cents: paid back + fee
    fee_nanos: int
    amount_nanos: int  # paid back


def self_refund_window() -> timedelta:
    return timedelta(hours=settings.SELF_REFUND_WINDOW_HOURS)


def self_refund_open(topup: TopUp, *, now=None) -> bool:
    """A top-up for credits, paid, less than the window old."""
    now = now or timezone.now()
    return (
        topup.purpose == TopUpPurpose.CREDITS
        and topup.status == TopUpStatus.SUCCEEDED
        and topup.succeeded_at is not None
        and now - topup.succeeded_at < self_refund_window()
    )


def self_refund_quote(topup: TopUp) -> Quote:
    """The refundable, fee and amount paid back of a top-up now (see the
    module's docstring); zero when nothing is left."""
    spent = 0
    if topup.succeeded_at is not None:
        spent = -(
            LedgerEntry.objects.filter(
                account_id=topup.account_id,
                kind=EntryKind.USAGE,
                created_at__gte=topup.succeeded_at,
            ).aggregate(total=Sum("amount_nanos"))["total"]
            or 0
        )
    usage = min(max(spent, 0), topup.amount_nanos)
    fees = (
        SelfRefund.objects.filter(topup_id=topup.pk)
        .exclude(status__in=(SelfRefundStatus.FAILED, SelfRefundStatus.CANCELED))
        .aggregate(total=Sum("fee_nanos"))["total"]
        or 0
    )
    already = topup.refunded_nanos + fees
    left = max(topup.amount_nanos - usage - already, 0)
    refundable = left - left % NANOS_PER_CENT
    fee = refund_fee_nanos(refundable)
    return Quote(
        usage_nanos=usage,
        already_nanos=already,
        refundable_nanos=refundable,
        fee_nanos=fee,
        amount_nanos=refundable - fee,
    )


def self_refund_request(*, topup: TopUp, actor) -> SelfRefund:
    """Refund a fresh top-up to its card, for the fee, taking its credits.

    Refused (``SelfRefundRefused``, nothing written) with the reason: another
    refund of it in progress, not a paid top-up for credits, older than the
    window, disputed, nothing refundable, or its credits not there to take.
    """
    gateway.api_key_get()  # payments not configured: refused before anything
    refund = _self_refund_open(topup=topup, actor=actor)
    try:
        answer = gateway.refund_create(
            payment_intent_id=refund.topup.payment_intent_id,
            amount_cents=refund.amount_nanos // NANOS_PER_CENT,
            idempotency_key=f"self-refund:{refund.pk}",
            metadata={"self_refund": refund.pk, "topup": refund.topup_id},
        )
    except RefundUncertain:
        # It may exist: the periodic check asks again with the same key.
        logger.warning("self-service refund %s: Stripe's answer is unknown", refund.pk)
        return SelfRefund.objects.get(pk=refund.pk)
    except RefundFailed as exc:
        return self_refund_settle(
            self_refund_id=refund.pk,
            stripe_refund_id=None,
            stripe_status="failed",
            message=str(exc),
        )
    return self_refund_settle(
        self_refund_id=refund.pk,
        stripe_refund_id=answer.id,
        stripe_status=answer.status,
        # Its first answer names the refund; Stripe's webhook (or the
        # periodic check) says it went through.
        final=answer.status in ("failed", "canceled"),
    )


@transaction.atomic
def _self_refund_open(*, topup: TopUp, actor) -> SelfRefund:
    """Write the refund and take its credits, under the top-up's row lock and
    then the wallet's."""
    locked = TopUp.objects.select_for_update().get(pk=topup.pk)
    if SelfRefund.objects.filter(
        topup=locked, status=SelfRefundStatus.REFUNDING
    ).exists():
        raise RefundInProgress(
            "A refund of this top-up is already in progress: wait for it to end."
        )
    if locked.purpose != TopUpPurpose.CREDITS:
        raise SelfRefundRefused(
            "This payment did not buy credits: it is not refunded here.",
            code="refund_not_credits",
        )
    if locked.status != TopUpStatus.SUCCEEDED or locked.succeeded_at is None:
        raise SelfRefundRefused(
            "Only a paid top-up can be refunded.", code="refund_not_paid"
        )
    if locked.disputed:
        raise SelfRefundRefused(
            "This payment is disputed with your bank: it is not refunded here.",
            code="refund_disputed",
        )
    hours = settings.SELF_REFUND_WINDOW_HOURS
    if not self_refund_open(locked):
        raise SelfRefundRefused(
            f"A top-up can be refunded here within {hours} hours of its payment; "
            "this one is older. Contact support.",
            code="refund_window_closed",
        )
    # The wallet's lock before the quote: no usage is settled in between.
    wallet = wallet_lock(locked.account)
    quote = self_refund_quote(locked)
    if quote.amount_nanos <= 0:
        raise SelfRefundRefused(
            "Nothing of this top-up is refundable: "
            f"{format_usd(quote.usage_nanos, 9)} was spent since it was paid and "
            f"{format_usd(quote.already_nanos)} of it was refunded already.",
            code="nothing_refundable",
        )
    lot = CreditLot.objects.get(entry_id=locked.entry_id, source=LotSource.TOPUP)
    need = quote.refundable_nanos
    if lot.remaining_nanos < need:
        raise SelfRefundRefused(
            f"Only {format_usd(lot.remaining_nanos, 9)} of this top-up's own "
            f"credits remain, and the refund takes {format_usd(need)} of them "
            "(the amount paid back and the fee).",
            code="refund_not_covered",
        )
    if wallet.available_nanos < need:
        raise SelfRefundRefused(
            f"{format_usd(need)} of credits must be free to take back, and "
            f"{format_usd(wallet.available_nanos, 9)} is available now: the rest is "
            "held by requests in flight. Try again when they have finished.",
            code="refund_not_covered",
        )
    refund = SelfRefund.objects.create(
        topup=locked,
        amount_nanos=quote.amount_nanos,
        fee_nanos=quote.fee_nanos,
        usage_nanos=quote.usage_nanos,
        requested_by=actor,
    )
    refund.entry = topup_take_back(
        locked,
        Reversal(
            kind=EntryKind.REFUND,
            amount_nanos=need,
            reference=f"self-refund:{refund.pk}",
            idempotency_key=f"self-refund:{refund.pk}",
            description=(
                f"Refund of a top-up: {format_usd(quote.amount_nanos)} back to "
                f"the card, {format_usd(quote.fee_nanos)} fee; its bonus is "
                "forfeited"
            ),
        ),
        actor=actor,
    )
    refund.save(update_fields=["entry"])
    locked.refunded_nanos += quote.amount_nanos
    locked.save(update_fields=["refunded_nanos"])
    # Auto top-up would charge again at once for what was just refunded.
    auto = AutoTopUp.objects.filter(account_id=locked.account_id, enabled=True).first()
    if auto is not None and auto.paused_at is None:
        wallet.refresh_from_db()
        if wallet.total_nanos < auto.threshold_nanos:
            autotopup_pause(
                account_id=locked.account_id,
                reason="you asked for a refund of a top-up",
            )
    return refund


def self_refund_settle(
    *,
    self_refund_id: int,
    stripe_refund_id: str | None,
    stripe_status: str,
    message: str = "",
    final: bool = True,
) -> SelfRefund:
    """Stripe's word on a self-service refund: its id, and (``final``) its
    status. Ends it once: refunded; or failed or canceled, giving its credits
    back. A refund already ended stays as it is."""
    with transaction.atomic():
        topup_id = SelfRefund.objects.values_list("topup_id", flat=True).get(
            pk=self_refund_id
        )
        # The top-up's lock first, as every refund of it takes them.
        topup = TopUp.objects.select_for_update().get(pk=topup_id)
        return _settle(
            topup,
            SelfRefund.objects.select_for_update().get(pk=self_refund_id),
            stripe_refund_id=stripe_refund_id,
            stripe_status=stripe_status if final else "",
            message=message,
        )


def _settle(
    topup: TopUp,
    refund: SelfRefund,
    *,
    stripe_refund_id: str | None,
    stripe_status: str,
    message: str = "",
) -> SelfRefund:
    """The one place a self-service refund ends (its top-up and row locked)."""
    if stripe_refund_id and not refund.stripe_refund_id:
        refund.stripe_refund_id = stripe_refund_id
        refund.save(update_fields=["stripe_refund_id"])
    end = _STRIPE_ENDS.get(stripe_status)
    if end is None:
        return refund  # pending: Stripe tells later
    if refund.status != SelfRefundStatus.REFUNDING:
        if end != refund.status:
            logger.error(
                "self-service refund %s ended %s; Stripe now says %s",
                refund.pk,
                refund.status,
                stripe_status,
            )
        return refund
    refund.status = end
    refund.closed_at = timezone.now()
    fields = ["status", "closed_at"]
    if end != SelfRefundStatus.REFUNDED:
        refund.failure_message = (message or f"Stripe: the refund {end}")[:300]
        fields.append("failure_message")
        if refund.entry_id is not None:
            refund.returned_entry = entry_reverse(
                entry=refund.entry,
                actor=None,
                reason=f"the refund {end}; the credits are back",
            )
            fields.append("returned_entry")
        topup.refunded_nanos -= refund.amount_nanos
        topup.save(update_fields=["refunded_nanos"])
    refund.save(update_fields=fields)
    return refund


def self_refund_of(topup: TopUp, refund_id: str, metadata: dict) -> SelfRefund | None:
    """The self-service refund a Stripe refund of a locked top-up is, if any:
    by its id, or by its metadata when Stripe's word comes before its answer."""
    found = SelfRefund.objects.filter(stripe_refund_id=refund_id).first()
    if found is None:
        named = str((metadata or {}).get("self_refund") or "")
        if named.isdigit():
            found = SelfRefund.objects.filter(pk=int(named), topup=topup).first()
    if found is None:
        return None
    return SelfRefund.objects.select_for_update().get(pk=found.pk)


@transaction.atomic
def self_refunds_sync(
    *, payment_intent_id: str, refunds: list[gateway.RefundInfo]
) -> list[gateway.RefundInfo]:
    """Stripe's refunds of a payment, from its webhooks (``charge.refunded``,
    ``charge.refund.updated``): those that are self-service refunds end by
    Stripe's status; the others are returned, for the rule of refunds made
    elsewhere (``refunds.topup_refunds_sync``)."""
    topup = (
        TopUp.objects.select_for_update()
        .filter(payment_intent_id=payment_intent_id)
        .first()
    )
    if topup is None:
        return refunds
    others = []
    for info in refunds:
        refund = self_refund_of(topup, info.id, info.metadata)
        if refund is None:
            others.append(info)
        else:
            _settle(topup, refund, stripe_refund_id=info.id, stripe_status=info.status)
    return others


def self_refunds_resolve(*, older_than: timedelta = RESOLVE_AFTER) -> int:
    """Ask Stripe about self-service refunds still in progress after a while
    (a webhook lost, an answer never received): the number ended."""
    ended = 0
    due = SelfRefund.objects.filter(
        status=SelfRefundStatus.REFUNDING,
        created_at__lt=timezone.now() - older_than,
    ).select_related("topup")
    for refund in due.order_by("created_at")[:200]:
        try:
            if refund.stripe_refund_id:
                info = gateway.refund_retrieve(refund_id=refund.stripe_refund_id)
            elif timezone.now() - refund.created_at < _IDEMPOTENCY_KEPT:
                info = gateway.refund_create(
                    payment_intent_id=refund.topup.payment_intent_id,
                    amount_cents=refund.amount_nanos // NANOS_PER_CENT,
                    idempotency_key=f"self-refund:{refund.pk}",
                    metadata={"self_refund": refund.pk, "topup": refund.topup_id},
                )
            else:
                logger.error(
                    "self-service refund %s: Stripe never named it; an operator "
                    "must look in Stripe",
                    refund.pk,
                )
                continue
        except RefundUncertain:
            continue  # next time
        except RefundFailed as exc:
            if refund.stripe_refund_id:
                continue  # could not read it back: next time
            info = None
            message = str(exc)
        if info is None:
            settled = self_refund_settle(
                self_refund_id=refund.pk,
                stripe_refund_id=None,
                stripe_status="failed",
                message=message,
            )
        else:
            settled = self_refund_settle(
                self_refund_id=refund.pk,
                stripe_refund_id=info.id,
                stripe_status=info.status,
            )
        ended += settled.status != SelfRefundStatus.REFUNDING
    return ended
