"""Handing a gift card's code over: the code is made here, at that moment,
and only its digest is kept. A recipient's card is emailed by a task (its
argument is the card's id; the code is made inside it), once: the card's row
stays locked until the email is handed to the mail server."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from gifts.codes import code_digest, code_generate, code_last4
from gifts.emails import gift_card_email_deliver
from gifts.models import GiftCard, GiftCardStatus


def code_issue(card: GiftCard) -> str:
    """Make the locked card's code: store its digest, give back its text."""
    code = code_generate()
    card.code_digest = code_digest(code)
    card.code_last4 = code_last4(code)
    card.code_issued_at = timezone.now()
    card.save(update_fields=["code_digest", "code_last4", "code_issued_at"])
    return code


def gift_card_email_send(*, card_id: int) -> bool:
    """Make a recipient card's code and email it to the recipient, once: the
    card's row stays locked until the email is handed to the mail server, so
    a failed send leaves no code behind (and is tried again)."""
    with transaction.atomic():
        card = (
            GiftCard.objects.select_for_update()
            .select_related("buyer__owner")
            .filter(pk=card_id)
            .first()
        )
        if (
            card is None
            or card.status != GiftCardStatus.ACTIVE
            or not card.recipient_email
            or card.emailed_at is not None
        ):
            return False
        code = code_issue(card)
        gift_card_email_deliver(card=card, code=code)
        card.emailed_at = timezone.now()
        card.save(update_fields=["emailed_at"])
    return True


def gift_cards_unsent(*, older_than: timedelta = timedelta(minutes=5)) -> list[int]:
    """Recipient cards paid a while ago whose email has not gone (a lost task)."""
    return list(
        GiftCard.objects.filter(
            status=GiftCardStatus.ACTIVE,
            emailed_at__isnull=True,
            paid_at__lte=timezone.now() - older_than,
        )
        .exclude(recipient_email="")
        .values_list("pk", flat=True)[:500]
    )
