"""What a payment buys. Most payments buy credits for the payer (a top-up); an
app above billing may sell something else through the same Stripe payment
(gift cards) by registering a purpose: its ``paid`` handler runs instead of
crediting the payer, exactly once, in the transaction that marks the payment
succeeded and with its row locked; its ``reversed`` handler runs instead of the
credits' claw-back when the payment is refunded or disputed.

Registered from the owning app's ``AppConfig.ready``::

    purpose_register("gift_card", paid=gift_card_paid, reversed=gift_card_reversed)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from billing.ledger.models import LedgerEntry
    from billing.payments.models import TopUp


@dataclass(frozen=True)
class Reversal:
    """Money of a payment went back: a refund or a dispute (``kind``), once per
    ``reference`` (Stripe's refund or dispute id)."""

    kind: str
    amount_nanos: int
    reference: str
    idempotency_key: str
    description: str


@dataclass(frozen=True)
class Purpose:
    paid: Callable[[TopUp], None]
    # What was taken back for the reversal, if anything.
    reversed: Callable[[TopUp, Reversal], LedgerEntry | None]


PURPOSES: dict[str, Purpose] = {}


def purpose_register(
    name: str,
    *,
    paid: Callable[[TopUp], None],
    reversed: Callable[[TopUp, Reversal], LedgerEntry | None],
) -> None:
    current = PURPOSES.get(name)
    if current is not None and current != Purpose(paid, reversed):
        raise ImproperlyConfigured(f"payment purpose {name} is registered twice")
    PURPOSES[name] = Purpose(paid, reversed)


def purpose_of(topup: TopUp) -> Purpose:
    try:
        return PURPOSES[topup.purpose]
    except KeyError:
        raise ImproperlyConfigured(
            f"payment purpose {topup.purpose} of top-up {topup.pk} has no handler"
        ) from None
