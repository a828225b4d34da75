"""Redeeming a code: a gift card's or a promotion's, told apart by whose
digest it is. Either becomes one Gift lot in the bonus pool (no expiry for a
gift card; a promotion's credits keep no expiry either: the code had one),
one journal entry whose method the history shows: "Gift card" or "Discount".

Once, visibly: a card's row is locked and must still be active; a promotion
code's row is locked and its count must be below its uses; the ledger's
idempotency key (``giftcard:<id>``, ``promotion:<batch>`` per account) and a
unique row per card and per (batch, account) make a second credit impossible
even if a check were wrong.

Guessing: a well-formed code that is none of ours is a failed attempt,
counted on the account's guard row (in the database, so every web worker
sees the same count). REDEEM_FAILURE_LIMIT of them in a row, each within
REDEEM_LOCK of the one before, lock redemption for REDEEM_LOCK. A typo (the
check character) is no attempt; a real code that cannot be used (redeemed,
expired, someone else's) is not counted either: it tells a guesser nothing
they can spend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from billing.ledger.grants import credit_grant
from billing.ledger.selectors import balance_get
from billing.models import LedgerEntry, LotSource, TopUpDispute
from billing.payments.refunds import DISPUTE_RETURNED
from gifts.codes import code_digest, code_read
from gifts.errors import (
    CodeExpired,
    CodeNotForYou,
    CodeOnHold,
    CodeUnknown,
    CodeUsed,
    RedeemLocked,
)
from gifts.models import (
    GiftCard,
    GiftCardStatus,
    PromotionCode,
    PromotionKind,
    RedeemGuard,
    Redemption,
    RedemptionKind,
)
from gifts.rules import (
    GIFT_CARD_METHOD,
    PROMOTION_METHOD,
    REDEEM_FAILURE_LIMIT,
    REDEEM_LOCK,
)
from money import format_usd


@dataclass(frozen=True)
class Redeemed:
    redemption: Redemption
    amount_nanos: int
    type: str  # "gift" or "discount"
    balance_nanos: int  # the account's total balance afterwards


def redeem_lock_check(*, account: Account, now: datetime | None = None) -> None:
    now = now or timezone.now()
    locked_until = (
        RedeemGuard.objects.filter(account=account, locked_until__gt=now)
        .values_list("locked_until", flat=True)
        .first()
    )
    if locked_until is not None:
        raise _locked(locked_until, now)


def _locked(locked_until: datetime, now: datetime) -> RedeemLocked:
    seconds = max(1, math.ceil((locked_until - now).total_seconds()))
    minutes = max(1, math.ceil(seconds / 60))
    return RedeemLocked(
        f"code: too many wrong codes; try again in {minutes} minute"
        f"{'' if minutes == 1 else 's'}",
        retry_after_seconds=seconds,
    )


def _guard_lock(account: Account) -> RedeemGuard:
    """The account's guard row, locked (made on first use): every attempt of
    the account waits here for the ones before it to be counted."""
    RedeemGuard.objects.get_or_create(account=account)
    return RedeemGuard.objects.select_for_update().get(account=account)


@transaction.atomic
def redeem_failure_record(*, account: Account) -> int:
    """Count a wrong code; the attempts left before a pause (0: paused now)."""
    return _failure_count(_guard_lock(account), timezone.now())


def _failure_count(guard: RedeemGuard, now: datetime) -> int:
    if guard.locked_until is not None and guard.locked_until > now:
        raise _locked(guard.locked_until, now)
    if guard.last_failure_at is None or now - guard.last_failure_at > REDEEM_LOCK:
        guard.failures = 0
    guard.failures += 1
    guard.last_failure_at = now
    left = REDEEM_FAILURE_LIMIT - guard.failures
    if left <= 0:
        guard.failures = 0
        guard.locked_until = now + REDEEM_LOCK
        guard.lockouts += 1
        left = 0
    guard.save()
    return left


def redeem_unlock(*, account: Account) -> None:
    """An operator lifts a pause (admin)."""
    RedeemGuard.objects.filter(account=account).update(failures=0, locked_until=None)


def code_redeem(*, account: Account, code: str) -> Redeemed:
    """Turn a code into credits for ``account``; a GiftError says why not."""
    redeem_lock_check(account=account)
    written = code_read(code)
    digest = code_digest(written)
    with transaction.atomic():
        # The guard's row lock before the code is looked up: codes sent at
        # once are tried one after the other, each after the wrong ones
        # before it were counted, so sending them in parallel gets no more
        # tries than the pause allows.
        guard = _guard_lock(account)
        now = timezone.now()
        if guard.locked_until is not None and guard.locked_until > now:
            raise _locked(guard.locked_until, now)
        card_id = (
            GiftCard.objects.filter(code_digest=digest)
            .values_list("pk", flat=True)
            .first()
        )
        if card_id is not None:
            return _card_redeem(account, card_id, written)
        promo_id = (
            PromotionCode.objects.filter(code_digest=digest)
            .values_list("pk", flat=True)
            .first()
        )
        if promo_id is not None:
            return _promotion_redeem(account, promo_id)
        left = _failure_count(guard, now)
    if left == 0:
        redeem_lock_check(account=account)
    raise CodeUnknown(
        f"code: no gift card or promotion has this code; {left} more wrong "
        f"code{'' if left == 1 else 's'} and redeeming pauses for "
        f"{int(REDEEM_LOCK.total_seconds() // 60)} minutes"
    )


def _dispute_returned(card: GiftCard) -> bool:
    """Every dispute of the card's payment was won: the money stayed with us."""
    statuses = list(
        TopUpDispute.objects.filter(topup_id=card.topup_id).values_list(
            "status", flat=True
        )
    )
    return bool(statuses) and all(s in DISPUTE_RETURNED for s in statuses)


@transaction.atomic
def _card_redeem(account: Account, card_id: int, written: str) -> Redeemed:
    card = GiftCard.objects.select_for_update().get(pk=card_id)
    if card.status == GiftCardStatus.DISPUTED and _dispute_returned(card):
        card.status = GiftCardStatus.ACTIVE
    if card.status == GiftCardStatus.DISPUTED:
        raise CodeOnHold("code: this gift card's payment is disputed; try later")
    if card.status != GiftCardStatus.ACTIVE:
        raise CodeUsed(
            "code: this gift card was redeemed already"
            if card.status == GiftCardStatus.REDEEMED
            else f"code: this gift card is {card.get_status_display().lower()}"
        )
    if card.recipient_email and card.recipient_email != account.owner.email.lower():
        raise CodeNotForYou(
            "code: this gift card was sent to another email address; sign in as "
            "that address to redeem it"
        )
    entry = credit_grant(
        account=account,
        source=LotSource.GIFT,
        amount_nanos=card.amount_nanos,
        reason=f"Gift card …{card.code_last4} ({format_usd(card.amount_nanos)})",
        actor=None,
        idempotency_key=f"giftcard:{card.pk}",
        reference=f"giftcard:{card.pk}",
        method=GIFT_CARD_METHOD,
    )
    card.status = GiftCardStatus.REDEEMED
    card.redeemed_at = timezone.now()
    card.save(update_fields=["status", "redeemed_at"])
    redemption = Redemption.objects.create(
        account=account,
        kind=RedemptionKind.GIFT,
        gift_card=card,
        amount_nanos=card.amount_nanos,
        entry=entry,
    )
    return _redeemed(redemption, entry)


@transaction.atomic
def _promotion_redeem(account: Account, promo_id: int) -> Redeemed:
    code = (
        PromotionCode.objects.select_for_update()
        .select_related("batch")
        .get(pk=promo_id)
    )
    batch = code.batch
    if batch.disabled:
        raise CodeUsed("code: this promotion was withdrawn")
    if batch.expires_at <= timezone.now():
        raise CodeExpired("code: this promotion code has expired")
    if Redemption.objects.filter(batch=batch, account=account).exists():
        raise CodeUsed("code: you have redeemed a code of this promotion already")
    if code.redemptions >= batch.uses_per_code:
        raise CodeUsed(
            "code: this promotion code has been used"
            if batch.kind == PromotionKind.CODES
            else "code: this promotion code has been used as often as it may be"
        )
    entry = credit_grant(
        account=account,
        source=LotSource.GIFT,
        amount_nanos=batch.amount_nanos,
        reason=f"Promotion: {batch.name}",
        actor=None,
        idempotency_key=f"promotion:{batch.pk}",
        reference=f"promotion:{batch.pk}",
        method=PROMOTION_METHOD,
    )
    code.redemptions += 1
    code.save(update_fields=["redemptions"])
    redemption = Redemption.objects.create(
        account=account,
        kind=RedemptionKind.DISCOUNT,
        promotion_code=code,
        batch=batch,
        amount_nanos=batch.amount_nanos,
        entry=entry,
    )
    return _redeemed(redemption, entry)


def _redeemed(redemption: Redemption, entry: LedgerEntry) -> Redeemed:
    RedeemGuard.objects.filter(account_id=redemption.account_id, failures__gt=0).update(
        failures=0
    )
    balance = balance_get(account=redemption.account)
    return Redeemed(
        redemption=redemption,
        amount_nanos=redemption.amount_nanos,
        type=redemption.kind,
        balance_nanos=balance.total_nanos,
    )
