"""Top-ups paid with Stripe: starting them, crediting them exactly once,
refunds and disputes, and auto top-up.

Credits are granted only from Stripe's word that a PaymentIntent succeeded: the
verified ``payment_intent.succeeded`` webhook, or the same PaymentIntent read
back from Stripe by the server (``topup_check``). Both end in ``topup_paid``,
which credits a top-up once: its row is locked, and its ledger entries carry the
PaymentIntent's id as their idempotency key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, BillingProfile
from billing import stripe_gateway as gateway
from billing.errors import BillingError, InvalidAmount
from billing.models import AutoTopUp, EntryKind, TopUp, TopUpMethod, TopUpStatus, Wallet
from billing.money import NANOS_PER_USD, format_usd, percent_of
from billing.services import topup_claw_back, topup_credit
from billing.webhooks import webhook_handler

logger = logging.getLogger(__name__)

NANOS_PER_CENT = NANOS_PER_USD // 100
MIN_TOPUP_NANOS = 5 * NANOS_PER_USD
MAX_TOPUP_NANOS = 25_000 * NANOS_PER_USD


class BillingProfileMissing(BillingError):
    code = "billing_profile_required"


class TopUpRefused(BillingError):
    code = "top_up_refused"


def topup_amount_check(amount_nanos: int) -> None:
    if isinstance(amount_nanos, bool) or not isinstance(amount_nanos, int):
        raise InvalidAmount("amount: must be a USD amount")
    if amount_nanos % NANOS_PER_CENT:
        raise InvalidAmount("amount: must be whole cents")
    if not MIN_TOPUP_NANOS <= amount_nanos <= MAX_TOPUP_NANOS:
        raise InvalidAmount(
            f"amount: a top-up is between {format_usd(MIN_TOPUP_NANOS)} and "
            f"{format_usd(MAX_TOPUP_NANOS)}"
        )


def bonus_for(amount_nanos: int) -> int:
    return percent_of(amount_nanos, Decimal(settings.BONUS_RATE))


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
    _record_intent(topup, intent)
    if intent.status == "succeeded":
        topup_check(topup=topup)  # the same PaymentIntent, read back from Stripe
    topup.refresh_from_db()
    return StartedTopUp(topup, intent.client_secret, intent.next_action_type)


def _record_intent(topup: TopUp, intent) -> None:
    status = {
        "requires_action": TopUpStatus.REQUIRES_ACTION,
        "processing": TopUpStatus.PROCESSING,
        "canceled": TopUpStatus.CANCELED,
    }.get(intent.status, TopUpStatus.CREATED)
    if intent.error_code:
        status = TopUpStatus.FAILED
    TopUp.objects.filter(pk=topup.pk).exclude(status=TopUpStatus.SUCCEEDED).update(
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
    if not topup.payment_intent_id or topup.status == TopUpStatus.SUCCEEDED:
        return topup
    intent = gateway.payment_intent_retrieve(payment_intent_id=topup.payment_intent_id)
    if intent.status == "succeeded":
        return topup_paid(
            payment_intent_id=intent.id,
            amount_cents=intent.amount_cents,
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
    if topup.status == TopUpStatus.SUCCEEDED:
        return topup
    if amount_cents * NANOS_PER_CENT != topup.amount_nanos:
        # Never credit something other than what was asked for.
        raise TopUpRefused(
            f"payment intent {payment_intent_id} is for {amount_cents} cents, "
            f"top-up {topup.pk} for {topup.amount_nanos} nanos"
        )
    topup.payment_intent_id = payment_intent_id
    topup.card_brand = card_brand or topup.card_brand
    topup.card_last4 = card_last4 or topup.card_last4
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
    AutoTopUp.objects.filter(in_flight=topup).update(in_flight=None)
    from invoices.services import invoice_issue

    invoice_issue(topup=topup)
    return topup


@transaction.atomic
def topup_failed(
    *, payment_intent_id: str, metadata_topup: str | None, code: str, message: str
) -> TopUp | None:
    topup = _topup_for(payment_intent_id, metadata_topup)
    if topup is None or topup.status == TopUpStatus.SUCCEEDED:
        return topup
    topup.payment_intent_id = payment_intent_id
    _topup_fail(topup, code=code, message=message)
    return topup


def _topup_fail(topup: TopUp, *, code: str, message: str) -> None:
    topup.status = TopUpStatus.FAILED
    topup.failure_message = (message or code or "declined")[:300]
    topup.save()
    AutoTopUp.objects.filter(in_flight=topup).update(in_flight=None)
    if topup.automatic:
        _autotopup_pause(
            account=topup.account,
            reason=f"the card was declined ({code or 'declined'}): {message}"[:300],
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
    if topup is None and metadata_topup and metadata_topup.isdigit():
        topup = TopUp.objects.select_for_update().filter(pk=int(metadata_topup)).first()
        if topup is not None and topup.payment_intent_id not in (
            None,
            payment_intent_id,
        ):
            return None
    return topup


# --- webhooks -------------------------------------------------------------------


def _card_of(intent: dict) -> tuple[str, str]:
    charges = (intent.get("charges") or {}).get("data") or []
    for charge in charges:
        card = (charge.get("payment_method_details") or {}).get("card") or {}
        if card:
            return card.get("brand") or "", card.get("last4") or ""
    return "", ""


@webhook_handler("payment_intent.succeeded")
def on_payment_intent_succeeded(event: dict) -> None:
    intent = event["data"]["object"]
    brand, last4 = _card_of(intent)
    topup_paid(
        payment_intent_id=intent["id"],
        amount_cents=int(intent["amount"]),
        metadata_topup=(intent.get("metadata") or {}).get("topup"),
        card_brand=brand,
        card_last4=last4,
    )


@webhook_handler("payment_intent.payment_failed")
def on_payment_intent_failed(event: dict) -> None:
    intent = event["data"]["object"]
    error = intent.get("last_payment_error") or {}
    topup_failed(
        payment_intent_id=intent["id"],
        metadata_topup=(intent.get("metadata") or {}).get("topup"),
        code=error.get("code") or error.get("decline_code") or "",
        message=error.get("message") or "",
    )


@webhook_handler("charge.dispute.created")
def on_dispute_created(event: dict) -> None:
    dispute = event["data"]["object"]
    payment_intent_id = dispute.get("payment_intent")
    topup = (
        TopUp.objects.select_for_update()
        .filter(payment_intent_id=payment_intent_id, status=TopUpStatus.SUCCEEDED)
        .first()
    )
    if topup is None:
        logger.warning("dispute %s is for no top-up of ours", dispute.get("id"))
        return
    topup_dispute(
        topup=topup, amount_cents=int(dispute["amount"]), dispute_id=dispute["id"]
    )


# --- refunds and disputes ---------------------------------------------------------


def refundable_nanos(topup: TopUp) -> int:
    """An operator refunds at most what remains unspent of the top-up's credits
    and is not held by requests in flight (and never more than was paid and not
    yet refunded)."""
    from billing.models import CreditLot, LotSource

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
        claw = topup_claw_back(
            topup_entry=locked.entry,
            amount_nanos=amount_nanos,
            kind=EntryKind.REFUND,
            idempotency_key=f"refund:{refund.id}",
            description=f"Refund of {format_usd(amount_nanos)}: {reason}",
            reference=refund.id,
            actor=actor,
        )
        if claw.unrecovered_nanos:
            # Checked above under the locks; a drift here is for reconciliation.
            logger.error(
                "refund %s of top-up %s took back %d nanos less than refunded",
                refund.id,
                locked.pk,
                claw.unrecovered_nanos,
            )
        locked.refunded_nanos += amount_nanos
        locked.save(update_fields=["refunded_nanos"])
    topup.refresh_from_db()
    return topup


@transaction.atomic
def topup_dispute(*, topup: TopUp, amount_cents: int, dispute_id: str) -> TopUp:
    """A customer disputed a payment with their bank: the money is gone, so its
    credits are taken back (what remains, up to the amount, and the bonus) and
    auto top-up is paused."""
    amount = min(amount_cents * NANOS_PER_CENT, topup.amount_nanos)
    topup_claw_back(
        topup_entry=topup.entry,
        amount_nanos=amount,
        kind=EntryKind.DISPUTE,
        idempotency_key=f"dispute:{dispute_id}",
        description=f"Payment disputed ({format_usd(amount)})",
        reference=dispute_id,
    )
    TopUp.objects.filter(pk=topup.pk).update(disputed=True)
    _autotopup_pause(account=topup.account, reason="a payment was disputed")
    topup.refresh_from_db()
    return topup


# --- auto top-up ------------------------------------------------------------------


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
    if enabled:
        if not payment_method_id:
            raise InvalidAmount("payment_method: auto top-up needs a saved card")
        if not BillingProfile.objects.filter(account=account).exists():
            raise BillingProfileMissing(
                "billing_profile: add your billing details before enabling auto top-up"
            )
    if payment_method_id:
        gateway.card_get(account=account, payment_method_id=payment_method_id)
    row = AutoTopUp.objects.select_for_update().get_or_create(account=account)[0]
    row.enabled = enabled
    row.threshold_nanos = threshold_nanos
    row.amount_nanos = amount_nanos
    row.payment_method_id = payment_method_id or ""
    # Saving the settings again is the customer's word to try again.
    row.paused_reason = ""
    row.paused_at = None
    row.updated_at = timezone.now()
    row.save()
    return row


def autotopup_due(*, account_id: int) -> bool:
    row = AutoTopUp.objects.filter(
        account_id=account_id, enabled=True, paused_at=None, in_flight=None
    ).first()
    if row is None:
        return False
    wallet = Wallet.objects.get(account_id=account_id)
    return wallet.total_nanos < row.threshold_nanos


def autotopup_run(*, account_id: int) -> TopUp | None:
    """If the balance fell below the threshold, charge the saved card
    once, off-session. The attempt is claimed in the database first (the
    in-flight top-up), so two workers or a retried task never charge twice; a
    decline pauses auto top-up until the customer saves its settings again."""
    with transaction.atomic():
        row = (
            AutoTopUp.objects.select_for_update()
            .filter(account_id=account_id, enabled=True, paused_at=None, in_flight=None)
            .first()
        )
        if row is None:
            return None
        wallet = Wallet.objects.get(account_id=account_id)
        # The balance, not what is available: workers' leases and requests in
        # flight hold credits for a moment without spending them.
        if wallet.total_nanos >= row.threshold_nanos:
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
        row.save(update_fields=["in_flight"])
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
            _topup_fail(locked, code=error.code, message=str(error))
        return topup
    _record_intent(topup, intent)
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


def _autotopup_pause(*, account: Account, reason: str) -> None:
    paused = AutoTopUp.objects.filter(account=account, enabled=True).update(
        paused_reason=reason, paused_at=timezone.now(), in_flight=None
    )
    if paused:
        email = account.owner.email
        transaction.on_commit(lambda: _tell_paused(email, reason))


def _tell_paused(email: str, reason: str) -> None:
    send_mail(
        subject="AGIPower: auto top-up is paused",
        message=(
            f"Auto top-up of your AGIPower balance is paused: {reason}.\n\n"
            "No further attempts will be made until you check your card and save "
            f"your auto top-up settings again at {settings.SITE_URL}/console/.\n"
        ),
        from_email=None,
        recipient_list=[email],
        fail_silently=True,
    )


STUCK_AFTER = timedelta(minutes=10)


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
            if locked.status != TopUpStatus.SUCCEEDED:
                _topup_fail(
                    locked,
                    code="unfinished",
                    message="the automatic payment did not finish",
                )
        finished += 1
    return finished


def autotopup_sweep() -> int:
    """Run auto top-up for every account that is below its threshold (the
    settle path asks too; this catches the rest)."""
    autotopup_unstick()
    due = AutoTopUp.objects.filter(enabled=True, paused_at=None, in_flight=None)
    started = 0
    for account_id in due.values_list("account_id", flat=True).iterator():
        if autotopup_due(account_id=account_id) and autotopup_run(
            account_id=account_id
        ):
            started += 1
    return started


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
    broken = TopUp.objects.filter(status=TopUpStatus.SUCCEEDED, entry=None).count()
    if broken:
        logger.error("%d succeeded top-ups have no ledger entry", broken)
    return {"checked": len(pending), "repaired": repaired, "uncredited": broken}
