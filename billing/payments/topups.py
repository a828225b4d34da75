"""Top-ups: starting them, and crediting them exactly once.

Credits are granted only from Stripe's word that a PaymentIntent succeeded: the
verified ``payment_intent.succeeded`` webhook, or the same PaymentIntent read
back from Stripe by the server (``topup_check``). Both end in ``topup_paid``,
which credits a top-up once: its row is locked, and its ledger entries carry the
PaymentIntent's id as their idempotency key. A payment for another amount or
currency than the top-up's credits nothing: it is recorded for operators.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, BillingProfile
from billing.errors import BillingError, InvalidAmount
from billing.ledger.grants import topup_credit
from billing.models import (
    PaymentMismatch,
    TopUp,
    TopUpMethod,
    TopUpPurpose,
    TopUpStatus,
    Wallet,
)
from billing.payments import stripe_gateway as gateway
from billing.payments.autotopup import (
    autotopup_pause,
    autotopup_rearm,
    autotopup_release,
)
from billing.payments.invoicing import topup_invoice_issue
from billing.payments.notices import operators_tell
from billing.payments.purposes import purpose_of
from billing.payments.rules import (
    CURRENCY,
    NANOS_PER_CENT,
    BillingProfileMissing,
    bonus_for,
    return_url_check,
    topup_amount_check,
)
from billing.payments.signals import topup_credited
from money import format_usd

logger = logging.getLogger(__name__)

# A top-up in one of these is finished: Stripe's word changes it no more.
_SETTLED = (TopUpStatus.SUCCEEDED, TopUpStatus.MISMATCH)
# Over without payment: failing it again changes nothing and tells no one.
_FAILED = (TopUpStatus.FAILED, TopUpStatus.CANCELED)


@dataclass(frozen=True)
class StartedTopUp:
    topup: TopUp
    client_secret: str
    next_action: str | None


def topup_start(
    *,
    account: Account,
    amount_nanos: int,
    method: str = TopUpMethod.CARD,
    payment_method_id: str | None = None,
    return_url: str | None = None,
) -> StartedTopUp:
    """Start a top-up. With a saved card the server confirms the PaymentIntent
    at once (3-D Secure, if asked for, is finished by Stripe.js with the client
    secret); otherwise Stripe.js confirms it (e.g. Alipay, with its redirect)."""
    topup_amount_check(amount_nanos)
    if method not in TopUpMethod.values:
        raise InvalidAmount(f"method: {method!r} is not one of card, alipay")
    return_url = return_url_check(return_url)
    if not BillingProfile.objects.filter(account=account).exists():
        raise BillingProfileMissing(
            "billing_profile: add your billing details before the first top-up"
        )
    card = None
    if payment_method_id:
        if method != TopUpMethod.CARD:
            raise InvalidAmount("payment_method: only a card is saved")
        card = gateway.card_get(account=account, payment_method_id=payment_method_id)
    topup = TopUp.objects.create(
        account=account,
        amount_nanos=amount_nanos,
        bonus_nanos=bonus_for(amount_nanos),
        method=method,
        payment_method_id=payment_method_id or "",
        card_brand=card.brand if card else "",
        card_last4=card.last4 if card else "",
    )
    intent = gateway.payment_intent_create(
        account=account,
        amount_cents=amount_nanos // NANOS_PER_CENT,
        method=method,
        payment_method_id=payment_method_id,
        confirm=bool(payment_method_id),
        off_session=False,
        idempotency_key=f"topup:{topup.pk}",
        metadata={"topup": str(topup.pk), "account": str(account.pk)},
        return_url=return_url,
    )
    topup_intent_record(topup, intent)
    if intent.status == "succeeded":
        topup_check(topup=topup)  # the same PaymentIntent, read back from Stripe
    topup.refresh_from_db()
    return StartedTopUp(topup, intent.client_secret, intent.next_action_type)


def topup_intent_record(topup: TopUp, intent: gateway.PaymentIntentInfo) -> None:
    """What Stripe answered when the PaymentIntent was made."""
    status = {
        "requires_action": TopUpStatus.REQUIRES_ACTION,
        "processing": TopUpStatus.PROCESSING,
        "canceled": TopUpStatus.CANCELED,
    }.get(intent.status, TopUpStatus.CREATED)
    if intent.error_code:
        status = TopUpStatus.FAILED
    TopUp.objects.filter(pk=topup.pk).exclude(status__in=_SETTLED).update(
        payment_intent_id=intent.id,
        status=status,
        failure_message=(intent.error_message or "")[:300],
        card_brand=intent.card_brand or topup.card_brand,
        card_last4=intent.card_last4 or topup.card_last4,
    )


def topup_check(*, topup: TopUp) -> TopUp:
    """Ask Stripe for the top-up's PaymentIntent and act on what it says (the
    server-side equal of the webhook)."""
    topup.refresh_from_db()
    if not topup.payment_intent_id or topup.status in _SETTLED:
        return topup
    intent = gateway.payment_intent_retrieve(payment_intent_id=topup.payment_intent_id)
    if intent.status == "succeeded":
        return topup_paid(
            payment_intent_id=intent.id,
            amount_cents=intent.amount_cents,
            currency=intent.currency,
            metadata_topup=str(topup.pk),
            card_brand=intent.card_brand,
            card_last4=intent.card_last4,
        )
    if topup.status == TopUpStatus.REQUIRES_ACTION and intent.status in (
        "requires_payment_method",
        "canceled",
    ):
        # 3-D Secure was refused or abandoned: this payment is over.
        return topup_failed(
            payment_intent_id=intent.id,
            metadata_topup=str(topup.pk),
            code=intent.error_code or intent.status,
            message=intent.error_message or "the card's authentication failed",
        )
    return topup


@transaction.atomic
def topup_paid(
    *,
    payment_intent_id: str,
    amount_cents: int,
    currency: str,
    metadata_topup: str | None,
    card_brand: str = "",
    card_last4: str = "",
) -> TopUp | None:
    """Credit a succeeded PaymentIntent's top-up, exactly once: the top-up lot,
    its bonus, and its invoice, in one transaction."""
    topup = _topup_for(payment_intent_id, metadata_topup)
    if topup is None:
        logger.warning("payment intent %s is no top-up of ours", payment_intent_id)
        return None
    if topup.status in _SETTLED:
        return topup
    if (
        amount_cents * NANOS_PER_CENT != topup.amount_nanos
        or (currency or "").lower() != CURRENCY
    ):
        # Never credit something other than what was asked for.
        return _topup_mismatch(
            topup,
            payment_intent_id=payment_intent_id,
            amount_cents=amount_cents,
            currency=currency,
        )
    topup.payment_intent_id = payment_intent_id
    topup.card_brand = card_brand or topup.card_brand
    topup.card_last4 = card_last4 or topup.card_last4
    if topup.purpose != TopUpPurpose.CREDITS:
        # It bought something else than the payer's credits: its app hands it
        # over, here, once.
        purpose_of(topup).paid(topup)
        topup.status = TopUpStatus.SUCCEEDED
        topup.failure_message = ""
        topup.succeeded_at = timezone.now()
        topup.save()
        topup.invoice = topup_invoice_issue(topup=topup)
        return topup
    credited = topup_credit(
        account=topup.account,
        amount_nanos=topup.amount_nanos,
        idempotency_key=f"topup:{payment_intent_id}",
        reference=payment_intent_id,
        method=topup.method_label,
        description=(
            f"{'Auto top-up' if topup.automatic else 'Top-up'} of "
            f"{format_usd(topup.amount_nanos)}"
        ),
    )
    topup.status = TopUpStatus.SUCCEEDED
    topup.failure_message = ""
    topup.succeeded_at = timezone.now()
    topup.entry = credited.topup_entry
    topup.save()
    autotopup_release(topup=topup)
    wallet = Wallet.objects.get(account_id=topup.account_id)
    autotopup_rearm(account_id=topup.account_id, balance_nanos=wallet.total_nanos)
    topup.invoice = topup_invoice_issue(topup=topup)
    topup_credited.send(sender=TopUp, topup=topup)
    return topup


def paid_text(amount_cents: int, currency: str) -> str:
    """ "$12.00", or "1200 minor units of EUR" for another currency."""
    if (currency or "").lower() == CURRENCY:
        return format_usd(amount_cents * NANOS_PER_CENT)
    return f"{amount_cents} minor units of {(currency or '?').upper()}"


def _topup_mismatch(
    topup: TopUp, *, payment_intent_id: str, amount_cents: int, currency: str
) -> TopUp:
    """Stripe took another amount than the top-up asked for: credit nothing,
    keep what arrived for operators, and tell them once."""
    paid = paid_text(amount_cents, currency)
    expected = format_usd(topup.amount_nanos)
    topup.payment_intent_id = payment_intent_id
    topup.status = TopUpStatus.MISMATCH
    topup.failure_message = (
        f"Stripe reported {paid} paid for this {expected} top-up; nothing was "
        "credited and an operator will look at it"
    )[:300]
    topup.save()
    mismatch, created = PaymentMismatch.objects.get_or_create(
        payment_intent_id=payment_intent_id,
        defaults={
            "topup": topup,
            "expected_cents": topup.amount_nanos // NANOS_PER_CENT,
            "expected_currency": CURRENCY,
            "paid_cents": amount_cents,
            "paid_currency": (currency or "")[:3].lower(),
        },
    )
    logger.error(
        "payment intent %s of top-up %s: %s paid, %s expected; not credited",
        payment_intent_id,
        topup.pk,
        paid,
        expected,
    )
    if topup.automatic:
        autotopup_release(topup=topup)
        autotopup_pause(
            account_id=topup.account_id,
            reason="a payment is being checked by our team",
            operator_only=True,
        )
    if created:
        account_email = topup.account.owner.email
        message = (
            f"Stripe reported payment intent {payment_intent_id} of top-up "
            f"{topup.pk} ({account_email}) as succeeded for {paid}, but the "
            f"top-up is for {expected}. Nothing was credited.\n\n"
            "Check it in Stripe, refund it there or grant what is due, then mark "
            "it resolved: "
            f"{settings.SITE_URL}/admin/billing/paymentmismatch/{mismatch.pk}/change/\n"
        )
        transaction.on_commit(
            lambda: operators_tell(
                subject=f"payment {payment_intent_id} was not credited",
                message=message,
            )
        )
    return topup


@transaction.atomic
def topup_failed(
    *, payment_intent_id: str, metadata_topup: str | None, code: str, message: str
) -> TopUp | None:
    topup = _topup_for(payment_intent_id, metadata_topup)
    if topup is None or topup.status in _SETTLED:
        return topup
    if topup.status not in _FAILED:
        topup.payment_intent_id = payment_intent_id
    topup_fail(topup, code=code, message=message)
    return topup


def topup_fail(topup: TopUp, *, code: str, message: str) -> None:
    """Mark a locked top-up failed; a failed automatic one pauses auto top-up,
    once: only while it is still the attempt in flight (the answer of the charge
    and the later ``payment_intent.payment_failed`` webhook both end here, and
    the customer may have saved the settings again in between)."""
    if topup.status not in _FAILED:
        topup.status = TopUpStatus.FAILED
        topup.failure_message = (message or code or "declined")[:300]
        topup.save()
    released = autotopup_release(topup=topup)
    if topup.automatic and released:
        autotopup_pause(
            account_id=topup.account_id,
            reason=f"the card was declined ({code or 'declined'}): {message}",
        )


def _topup_for(payment_intent_id: str, metadata_topup: str | None) -> TopUp | None:
    """The top-up of a PaymentIntent, locked. Found by the PaymentIntent's id, or
    by the top-up id in its metadata (a webhook may arrive before the id is
    recorded)."""
    topup = (
        TopUp.objects.select_for_update()
        .filter(payment_intent_id=payment_intent_id)
        .first()
    )
    if (
        topup is None
        and isinstance(metadata_topup, str)
        and metadata_topup.isascii()
        and metadata_topup.isdigit()
    ):
        topup = TopUp.objects.select_for_update().filter(pk=int(metadata_topup)).first()
        if topup is not None and topup.payment_intent_id not in (
            None,
            payment_intent_id,
        ):
            return None
    return topup


def payments_reconcile(*, since_days: int = 7) -> dict[str, int]:
    """Compare recent top-ups with Stripe: credit any whose PaymentIntent
    succeeded without being credited (a lost webhook), and report succeeded
    top-ups without their ledger entry."""
    since = timezone.now() - timedelta(days=since_days)
    repaired = 0
    pending = TopUp.objects.filter(
        created_at__gte=since,
        payment_intent_id__isnull=False,
        status__in=[
            TopUpStatus.CREATED,
            TopUpStatus.PROCESSING,
            TopUpStatus.REQUIRES_ACTION,
        ],
    )
    for topup in pending:
        try:
            if topup_check(topup=topup).status == TopUpStatus.SUCCEEDED:
                repaired += 1
                logger.warning("top-up %s was credited by reconciliation", topup.pk)
        except BillingError:
            logger.exception("top-up %s could not be checked", topup.pk)
    broken = TopUp.objects.filter(
        status=TopUpStatus.SUCCEEDED, purpose=TopUpPurpose.CREDITS, entry=None
    ).count()
    if broken:
        logger.error("%d succeeded top-ups have no ledger entry", broken)
    return {"checked": len(pending), "repaired": repaired, "uncredited": broken}
