"""Buying gift cards: the purchase (a Stripe payment like a top-up's, whose
purpose is a gift card: no bonus, no credits for the payer, an invoice for the
card), the
card becoming active when Stripe says it was paid, its code handed over once,
and what a refund or a dispute of its payment does to it.

The code does not exist until it is handed over, and is made exactly then, so
that its clear text is never stored: for a bearer card when the buyer first
asks to see it (the purchase's answer if the payment went through at once,
else the console right after payment, or later from the list: once); for a
card bound to a recipient, by the task that emails it to them (the buyer sees
only its last four characters). Handing over claims the card's row under its
lock, so a code is made once.

Refunds: the buyer may take back a card within 24 hours of payment while it
is unredeemed and unshared, for a 5% fee. "Unshared" means we have not emailed
its code to a recipient: a recipient told of a gift by us keeps it. A bearer
code the buyer has seen may have been passed on; refunding voids it in the
same transaction under the card's lock, so it can no longer be redeemed.

Locks: the top-up's row first, then the card's (as billing's webhooks do
before calling the handlers here); a redemption locks only the card.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from accounts.models import Account
from billing.errors import PaymentFailed
from billing.ledger.reversals import topup_claw_back
from billing.models import LedgerEntry, TopUp, TopUpMethod, TopUpPurpose, TopUpStatus
from billing.payments import stripe_gateway as gateway
from billing.payments.purposes import Reversal
from billing.payments.refunds import topup_refund
from billing.payments.rules import NANOS_PER_CENT, refund_fee_nanos
from billing.payments.topups import topup_check, topup_fail, topup_intent_record
from gifts.delivery import code_issue
from gifts.errors import (
    GiftCardInvalid,
    GiftCardLimit,
    GiftCardNotFound,
    GiftCardRefused,
)
from gifts.models import GiftCard, GiftCardStatus, Redemption
from gifts.rules import (
    DAILY_CARDS,
    DAILY_NANOS,
    MAX_CARD_NANOS,
    MIN_CARD_NANOS,
    REFUND_WINDOW,
)
from money import NANOS_PER_USD, format_usd

logger = logging.getLogger(__name__)

# Payments over without money: their cards do not count towards the day's limit.
_UNPAID = (TopUpStatus.FAILED, TopUpStatus.CANCELED)


@dataclass(frozen=True)
class StartedGiftCard:
    card: GiftCard
    client_secret: str
    next_action: str | None
    # The code, when the payment went through at once (a bearer card).
    code: str | None


def gift_card_amount_check(amount_nanos: int) -> None:
    if isinstance(amount_nanos, bool) or not isinstance(amount_nanos, int):
        raise GiftCardInvalid("amount: must be a USD amount")
    if amount_nanos % NANOS_PER_USD:
        raise GiftCardInvalid("amount: a gift card is a whole number of dollars")
    if not MIN_CARD_NANOS <= amount_nanos <= MAX_CARD_NANOS:
        raise GiftCardInvalid(
            f"amount: a gift card is between {format_usd(MIN_CARD_NANOS)} and "
            f"{format_usd(MAX_CARD_NANOS)}"
        )


def recipient_email_check(email: str | None) -> str:
    email = (email or "").strip().lower()
    if not email:
        return ""
    try:
        validate_email(email)
    except ValidationError:
        raise GiftCardInvalid("recipient_email: not an email address") from None
    return email


def _day_start(now: datetime) -> datetime:
    return datetime.combine(now.date(), time.min, tzinfo=now.tzinfo)


def _daily_limit_check(account: Account, amount_nanos: int) -> None:
    """Under the account's lock: the cards started today (UTC) whose payment
    has not failed, and what they are worth, leave room for this one."""
    now = timezone.now()
    start = _day_start(now)
    today = (
        GiftCard.objects.filter(buyer=account, created_at__gte=start)
        .exclude(topup__status__in=_UNPAID)
        .aggregate(cards=Count("pk"), nanos=Sum("amount_nanos"))
    )
    cards, nanos = today["cards"], today["nanos"] or 0
    retry = int((start + timedelta(days=1) - now).total_seconds()) + 1
    if cards >= DAILY_CARDS:
        raise GiftCardLimit(
            f"amount: at most {DAILY_CARDS} gift cards a day (UTC); you have "
            f"bought {cards} today",
            retry_after_seconds=retry,
        )
    if nanos + amount_nanos > DAILY_NANOS:
        raise GiftCardLimit(
            f"amount: at most {format_usd(DAILY_NANOS)} of gift cards a day (UTC); "
            f"{format_usd(max(DAILY_NANOS - nanos, 0))} is left for today",
            retry_after_seconds=retry,
        )


def gift_card_start(
    *,
    account: Account,
    amount_nanos: int,
    recipient_email: str | None = None,
    payment_method_id: str | None = None,
) -> StartedGiftCard:
    """Start buying a card. With a saved card the server confirms the payment
    at once (Stripe.js finishes 3-D Secure if asked, with the client secret);
    otherwise Stripe.js confirms it. The card is active once Stripe says the
    payment succeeded (``gift_card_paid``)."""
    gift_card_amount_check(amount_nanos)
    recipient_email = recipient_email_check(recipient_email)
    card_info = None
    if payment_method_id:
        card_info = gateway.card_get(
            account=account, payment_method_id=payment_method_id
        )
    with transaction.atomic():
        # One purchase of an account at a time: the day's count stays true.
        Account.objects.select_for_update().get(pk=account.pk)
        _daily_limit_check(account, amount_nanos)
        topup = TopUp.objects.create(
            account=account,
            amount_nanos=amount_nanos,
            bonus_nanos=0,
            method=TopUpMethod.CARD,
            purpose=TopUpPurpose.GIFT_CARD,
            payment_method_id=payment_method_id or "",
            card_brand=card_info.brand if card_info else "",
            card_last4=card_info.last4 if card_info else "",
        )
        card = GiftCard.objects.create(
            buyer=account,
            topup=topup,
            amount_nanos=amount_nanos,
            recipient_email=recipient_email,
        )
    try:
        intent = gateway.payment_intent_create(
            account=account,
            amount_cents=amount_nanos // NANOS_PER_CENT,
            method=TopUpMethod.CARD,
            payment_method_id=payment_method_id,
            confirm=bool(payment_method_id),
            off_session=False,
            idempotency_key=f"giftcard:{topup.pk}",
            metadata={
                "topup": str(topup.pk),
                "account": str(account.pk),
                "gift_card": str(card.pk),
            },
        )
    except PaymentFailed as exc:
        # No payment was made: the purchase is over and leaves the day's count.
        with transaction.atomic():
            locked = TopUp.objects.select_for_update().get(pk=topup.pk)
            topup_fail(locked, code="stripe_error", message=str(exc))
        raise
    topup_intent_record(topup, intent)
    if intent.status == "succeeded":
        topup_check(topup=topup)  # the same PaymentIntent, read back from Stripe
    card.refresh_from_db()
    code = None
    if card.status == GiftCardStatus.ACTIVE and not card.recipient_email:
        code = gift_card_code_reveal(account=account, card_id=card.pk)
        card.refresh_from_db()
    return StartedGiftCard(card, intent.client_secret, intent.next_action_type, code)


def gift_card_refresh(*, card: GiftCard) -> GiftCard:
    """Ask Stripe about a card still awaiting payment (after 3-D Secure), so
    what the buyer sees is current; the server-side equal of the webhook."""
    if card.status == GiftCardStatus.PENDING:
        topup = TopUp.objects.get(pk=card.topup_id)
        if topup.payment_intent_id and topup.status not in _UNPAID:
            topup_check(topup=topup)
            card.refresh_from_db()
    return card


# --- the payment's handlers (billing.payments.purposes) -------------------------


def gift_card_paid(topup: TopUp) -> None:
    """Stripe says the card's payment succeeded: the card is active. Called
    once by billing, in its transaction, with the top-up's row locked."""
    card = GiftCard.objects.select_for_update().get(topup=topup)
    if card.status != GiftCardStatus.PENDING:
        return
    card.status = GiftCardStatus.ACTIVE
    card.paid_at = timezone.now()
    card.save(update_fields=["status", "paid_at"])
    if card.recipient_email:
        from gifts.tasks import gift_card_email  # queued on commit, by id

        card_id = card.pk
        transaction.on_commit(lambda: gift_card_email.delay(card_id))


def gift_card_reversed(topup: TopUp, reversal: Reversal) -> LedgerEntry | None:
    """Money of a card's payment went back (a refund: ``reversal.kind`` refund;
    a chargeback: dispute). Called by billing under the top-up's lock, once per
    Stripe refund, and for a dispute until it returns an entry.

    - an unredeemed card: a refund voids it (the whole card, even for a partial
      refund: an operator refunds a card in full); a dispute holds it, not
      redeemable until the dispute is won (``gifts.redemption`` asks);
    - a redeemed card: what remains of the Gift lot it became is taken back
      from the account that redeemed it, up to the amount (never more, and
      never other credits). A dispute won gives it back (billing reverses the
      entry returned here).
    """
    card = GiftCard.objects.select_for_update().get(topup=topup)
    if card.status == GiftCardStatus.REDEEMED:
        redemption = Redemption.objects.select_related("entry").get(gift_card=card)
        claw = topup_claw_back(
            topup_entry=redemption.entry,
            amount_nanos=reversal.amount_nanos,
            kind=reversal.kind,
            idempotency_key=reversal.idempotency_key,
            description=(
                f"Gift card …{card.code_last4}: its payment was "
                f"{'refunded to' if reversal.kind == 'refund' else 'disputed by'} "
                f"its buyer ({format_usd(reversal.amount_nanos)})"
            ),
            reference=reversal.reference,
        )
        if claw.unrecovered_nanos:
            logger.warning(
                "%s %s of gift card %s: %d nanos were spent and not taken back",
                reversal.kind,
                reversal.reference,
                card.pk,
                claw.unrecovered_nanos,
            )
        return claw.entry
    if card.status in (GiftCardStatus.ACTIVE, GiftCardStatus.DISPUTED):
        if reversal.kind == "refund":
            card.status = GiftCardStatus.REFUNDED
            card.refunded_at = timezone.now()
            card.refund_nanos += reversal.amount_nanos
        else:
            card.status = GiftCardStatus.DISPUTED
        card.save(update_fields=["status", "refunded_at", "refund_nanos"])
    return None


# --- handing the code over --------------------------------------------------------


def _own_card(account: Account, card_id: int, *, lock: bool = False) -> GiftCard:
    cards = GiftCard.objects.filter(pk=card_id, buyer=account)
    if lock:
        cards = cards.select_for_update()
    card = cards.first()
    if card is None:
        raise GiftCardNotFound("No such gift card.")
    return card


@transaction.atomic
def gift_card_code_reveal(*, account: Account, card_id: int) -> str:
    """The code of a paid bearer card, to its buyer, once."""
    card = _own_card(account, card_id, lock=True)
    if card.recipient_email:
        raise GiftCardRefused(
            f"code: this card's code is emailed to {card.recipient_email}; only "
            "they see it"
        )
    if card.status == GiftCardStatus.PENDING:
        raise GiftCardRefused("code: the card's payment has not gone through yet")
    if card.code_digest:
        raise GiftCardRefused(
            f"code: it was shown once already (it ends in {card.code_last4})"
        )
    if card.status != GiftCardStatus.ACTIVE:
        raise GiftCardRefused(f"code: the card is {card.get_status_display().lower()}")
    return code_issue(card)


# --- the buyer's refund --------------------------------------------------------------


def gift_card_refund_refusal(card: GiftCard, *, now: datetime | None = None) -> str:
    """Why the buyer cannot refund the card now; "" if they can."""
    now = now or timezone.now()
    if card.status == GiftCardStatus.PENDING:
        return "its payment has not gone through"
    if card.status == GiftCardStatus.REDEEMED:
        return "it was redeemed"
    if card.status != GiftCardStatus.ACTIVE:
        return f"it is {card.get_status_display().lower()}"
    if card.emailed_at is not None:
        return f"its code was sent to {card.recipient_email}"
    if card.paid_at is None or now - card.paid_at > REFUND_WINDOW:
        return "a card is refunded only within 24 hours of its purchase"
    return ""


def gift_card_refund(*, account: Account, card_id: int) -> GiftCard:
    """Refund an unredeemed, unshared card bought in the last 24 hours: 95% of
    its price goes back to the card it was paid with (a 5% fee), and the card
    is voided in the same transaction, under its lock, so its code cannot be
    redeemed meanwhile. The refund is recorded by billing (``topup_refund``)
    with Stripe's refund id, so the ``charge.refunded`` webhook that follows
    finds it and does nothing more. If Stripe refuses, nothing changes."""
    card = _own_card(account, card_id)
    with transaction.atomic():
        topup = TopUp.objects.select_for_update().get(pk=card.topup_id)
        card = GiftCard.objects.select_for_update().get(pk=card.pk)
        refusal = gift_card_refund_refusal(card)
        if not refusal and (topup.refunded_nanos or topup.disputed):
            refusal = "its payment was refunded or disputed already"
        if refusal:
            raise GiftCardRefused(f"refund: this card cannot be refunded: {refusal}")
        fee = refund_fee_nanos(card.amount_nanos)
        card.status = GiftCardStatus.REFUNDED
        card.refunded_at = timezone.now()
        card.refund_fee_nanos = fee
        card.refund_nanos = card.amount_nanos - fee
        card.save(
            update_fields=["status", "refunded_at", "refund_fee_nanos", "refund_nanos"]
        )
        topup_refund(
            topup=topup,
            amount_nanos=card.amount_nanos - fee,
            reason=(
                f"gift card refunded by its buyer within 24 hours "
                f"({format_usd(fee)} fee kept)"
            ),
            actor=account.owner,
        )
    return card
