"""Money that goes back: refunds (by an operator here, or in Stripe's
dashboard) and disputes. Each takes back the top-up's credits by one rule
(``billing.ledger.reversals.topup_claw_back``: what remains of that top-up, up
to the amount, and the bonus on it), once per Stripe refund or dispute id.

A refund made here is recorded (``TopUpRefund``) in the same transaction as
its claw-back, under the top-up's lock; the ``charge.refunded`` webhook that
Stripe sends for it then finds it and does nothing more. A refund made in
Stripe's dashboard arrives only by that webhook and is taken back there.

A dispute takes the credits back when it opens; a dispute won (or an inquiry
closed without a chargeback) gives back exactly what it took, once, by a
reversal of its entry. Whatever order the events arrive in, the credits end
up taken exactly when the dispute was not won.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from billing.errors import InvalidAmount
from billing.ledger.reversals import entry_reverse, topup_claw_back
from billing.models import (
    CreditLot,
    EntryKind,
    LedgerEntry,
    LotSource,
    TopUp,
    TopUpDispute,
    TopUpPurpose,
    TopUpRefund,
    TopUpStatus,
    Wallet,
)
from billing.payments import stripe_gateway as gateway
from billing.payments.autotopup import autotopup_pause
from billing.payments.purposes import Reversal, purpose_of
from billing.payments.rules import NANOS_PER_CENT, TopUpRefused
from billing.payments.signals import topup_reversed
from money import format_usd

logger = logging.getLogger(__name__)

# Dispute outcomes that leave the money with us: what was taken comes back.
DISPUTE_RETURNED = ("won", "warning_closed")


@dataclass(frozen=True)
class StripeRefund:
    id: str
    amount_cents: int
    status: str


def refundable_nanos(topup: TopUp) -> int:
    """An operator refunds at most what remains unspent of the top-up's credits
    and is not held by requests in flight (and never more than was paid and not
    yet refunded)."""
    if topup.purpose != TopUpPurpose.CREDITS:
        # It bought something else: its purpose takes back what it became
        # (``purposes.Reversal``); what was paid and not refunded bounds it.
        return max(topup.amount_nanos - topup.refunded_nanos, 0)
    if topup.entry_id is None:
        return 0
    lot = CreditLot.objects.get(entry_id=topup.entry_id, source=LotSource.TOPUP)
    available = Wallet.objects.get(account_id=topup.account_id).available_nanos
    return max(
        min(lot.remaining_nanos, available, topup.amount_nanos - topup.refunded_nanos),
        0,
    )


def topup_refund(*, topup: TopUp, amount_nanos: int, reason: str, actor) -> TopUp:
    """Refund (part of) a top-up to its card and take back its credits: the
    amount, from the top-up's own credits, and the bonus on it.

    The top-up's row stays locked from the check to the end, so two refunds of
    one top-up run one after the other and never pay back more than its
    credits. The credits are taken back in the same transaction as the refund
    is recorded; if Stripe refuses, nothing is taken.
    """
    reason = (reason or "").strip()
    if not reason:
        raise InvalidAmount("reason: a refund needs a reason")
    if amount_nanos <= 0 or amount_nanos % NANOS_PER_CENT:
        raise InvalidAmount("amount: a positive amount in whole cents")
    with transaction.atomic():
        locked = TopUp.objects.select_for_update().get(pk=topup.pk)
        if locked.status != TopUpStatus.SUCCEEDED:
            raise TopUpRefused("only a succeeded top-up is refunded")
        limit = refundable_nanos(locked)
        if amount_nanos > limit:
            raise TopUpRefused(
                f"amount: at most {format_usd(limit)} of this top-up can be refunded "
                "now: the rest of its credits were spent, are held by requests in "
                "flight, or were refunded already"
            )
        refund = gateway.refund_create(
            payment_intent_id=locked.payment_intent_id,
            amount_cents=amount_nanos // NANOS_PER_CENT,
            idempotency_key=f"refund:{locked.pk}:{locked.refunded_nanos}:{amount_nanos}",
        )
        _refund_apply(
            locked,
            refund_id=refund.id,
            amount_nanos=amount_nanos,
            description=f"Refund of {format_usd(amount_nanos)}: {reason}",
            reason=reason,
            actor=actor,
        )
    topup.refresh_from_db()
    return topup


@transaction.atomic
def topup_refunds_sync(
    *, payment_intent_id: str, refunds: list[StripeRefund]
) -> TopUp | None:
    """Stripe's refunds of a top-up's payment (``charge.refunded``): each one
    not yet taken back here is, by the same rule as an operator's refund."""
    topup = (
        TopUp.objects.select_for_update()
        .filter(payment_intent_id=payment_intent_id, status=TopUpStatus.SUCCEEDED)
        .first()
    )
    if topup is None:
        logger.warning("refunds of %s are for no credited top-up", payment_intent_id)
        return None
    for refund in refunds:
        if refund.status in ("failed", "canceled") or refund.amount_cents <= 0:
            continue  # no money went back
        amount = refund.amount_cents * NANOS_PER_CENT
        _refund_apply(
            topup,
            refund_id=refund.id,
            amount_nanos=amount,
            description=f"Refund of {format_usd(amount)} (made in Stripe)",
            reason="refunded in Stripe",
            actor=None,
        )
    return topup


def _refund_apply(
    topup: TopUp,
    *,
    refund_id: str,
    amount_nanos: int,
    description: str,
    reason: str,
    actor,
) -> TopUpRefund | None:
    """Take back the credits of one Stripe refund of a locked top-up, once per
    refund id; None if it was taken back before."""
    if TopUpRefund.objects.filter(stripe_refund_id=refund_id).exists():
        return None
    earlier = LedgerEntry.objects.filter(
        account_id=topup.account_id, idempotency_key=f"refund:{refund_id}"
    ).first()
    if earlier is not None:
        # Refunded here before refunds were recorded one by one: its credits
        # were taken back, and counted in refunded_nanos, then.
        return TopUpRefund.objects.create(
            topup=topup,
            stripe_refund_id=refund_id,
            amount_nanos=amount_nanos,
            reason=reason[:500],
            actor=actor,
            entry=earlier,
        )
    entry = topup_take_back(
        topup,
        Reversal(
            kind=EntryKind.REFUND,
            amount_nanos=amount_nanos,
            reference=refund_id,
            idempotency_key=f"refund:{refund_id}",
            description=description,
        ),
        actor=actor,
    )
    counted = min(amount_nanos, topup.amount_nanos - topup.refunded_nanos)
    if counted < amount_nanos:
        logger.error("refund %s of top-up %s passes what was paid", refund_id, topup.pk)
    topup.refunded_nanos += counted
    topup.save(update_fields=["refunded_nanos"])
    return TopUpRefund.objects.create(
        topup=topup,
        stripe_refund_id=refund_id,
        amount_nanos=amount_nanos,
        reason=reason[:500],
        actor=actor,
        entry=entry,
    )


def topup_take_back(
    topup: TopUp, reversal: Reversal, *, actor=None
) -> LedgerEntry | None:
    """What a refund or dispute of a locked top-up takes back, once per
    reference: a credits top-up's credits by the claw-back rule (and the
    programs above hear of it); a payment for something else, by its purpose."""
    if topup.purpose != TopUpPurpose.CREDITS:
        return purpose_of(topup).reversed(topup, reversal)
    claw = topup_claw_back(
        topup_entry=topup.entry,
        amount_nanos=reversal.amount_nanos,
        kind=reversal.kind,
        idempotency_key=reversal.idempotency_key,
        description=reversal.description,
        reference=reversal.reference,
        actor=actor,
    )
    if claw.unrecovered_nanos:
        logger.warning(
            "%s %s of top-up %s: %d nanos of it were spent or held and not taken back",
            reversal.kind,
            reversal.reference,
            topup.pk,
            claw.unrecovered_nanos,
        )
    topup_reversed.send(
        sender=TopUp,
        topup=topup,
        kind=str(reversal.kind),
        reference=reversal.reference,
        amount_nanos=reversal.amount_nanos,
    )
    return claw.entry


@transaction.atomic
def topup_dispute_update(
    *,
    payment_intent_id: str,
    dispute_id: str,
    amount_cents: int,
    status: str,
    closed: bool,
) -> TopUpDispute | None:
    """A dispute opened, changed or closed (``charge.dispute.*``).

    Until it is won its credits are taken back (what remains of the top-up, up
    to the amount, and the bonus on it), and auto top-up pauses when it is
    first heard of; once won, what was taken comes back, once. A dispute
    closed stays closed: an older event arriving late changes nothing.
    """
    topup = (
        TopUp.objects.select_for_update()
        .filter(payment_intent_id=payment_intent_id, status=TopUpStatus.SUCCEEDED)
        .first()
    )
    if topup is None:
        logger.warning("dispute %s is for no top-up of ours", dispute_id)
        return None
    amount = min(max(amount_cents, 0) * NANOS_PER_CENT, topup.amount_nanos)
    dispute, created = TopUpDispute.objects.select_for_update().get_or_create(
        stripe_dispute_id=dispute_id,
        defaults={"topup": topup, "amount_nanos": amount, "status": status},
    )
    if created:
        # Taken back before disputes were recorded one by one, if at all.
        dispute.entry = LedgerEntry.objects.filter(
            account_id=topup.account_id, idempotency_key=f"dispute:{dispute_id}"
        ).first()
    if dispute.closed_at is None:
        dispute.status = status
        if closed:
            dispute.closed_at = timezone.now()
    if dispute.status in DISPUTE_RETURNED:
        if dispute.entry is not None and dispute.returned_entry is None:
            dispute.returned_entry = entry_reverse(
                entry=dispute.entry,
                actor=None,
                reason=f"the dispute of this payment was closed ({dispute.status})",
            )
    elif dispute.entry is None:
        dispute.entry = topup_take_back(
            topup,
            Reversal(
                kind=EntryKind.DISPUTE,
                amount_nanos=dispute.amount_nanos,
                reference=dispute_id,
                idempotency_key=f"dispute:{dispute_id}",
                description=f"Payment disputed ({format_usd(dispute.amount_nanos)})",
            ),
        )
    dispute.save()
    if created:
        TopUp.objects.filter(pk=topup.pk).update(disputed=True)
        if dispute.status not in DISPUTE_RETURNED:
            autotopup_pause(
                account_id=topup.account_id,
                reason="a payment was disputed",
                operator_only=True,
            )
    return dispute
