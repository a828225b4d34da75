"""Gift cards' Celery tasks: the email that hands a recipient their code (its
argument is the card's id: the code is made inside the task and never travels
through the broker), and a sweep for emails whose task was lost."""

from __future__ import annotations

from celery import shared_task

from gifts import delivery


@shared_task
def gift_card_email(card_id: int) -> bool:
    return delivery.gift_card_email_send(card_id=card_id)


@shared_task
def gift_cards_email_unsent() -> int:
    unsent = delivery.gift_cards_unsent()
    for card_id in unsent:
        gift_card_email.delay(card_id)
    return len(unsent)
