"""A paid top-up's invoice (or a gift card's, bought the same way): its lines
composed from the top-up, issued once.

Invoices know no top-ups: ``invoices.services.invoice_issue`` takes plain data,
and the top-up points at its invoice (``TopUp.invoice``). "Once" rests here:
the top-up's row is locked, and its ``invoice`` set in the same transaction as
the invoice is issued, so a second call (a webhook retried, another worker)
waits for the lock and then finds the first one's invoice.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import transaction

from billing.models import EntryKind, LedgerEntry, TopUp, TopUpPurpose, TopUpStatus
from invoices.models import Invoice
from invoices.services import InvoiceError, InvoiceLine, invoice_issue
from money import format_usd


@transaction.atomic
def topup_invoice_issue(*, topup: TopUp) -> Invoice:
    """Issue the invoice of a credited top-up, in the caller's transaction (the
    one that credits it). The same top-up again answers with its invoice."""
    # Not joined to its invoice: a call that waited for the lock must read the
    # invoice the first one set (a join would answer as it was before the wait).
    topup = (
        TopUp.objects.select_for_update(of=("self",))
        .select_related("account__owner")
        .get(pk=topup.pk)
    )
    if topup.invoice_id is not None:
        return Invoice.objects.get(pk=topup.invoice_id)
    if topup.status in (TopUpStatus.FAILED, TopUpStatus.CANCELED):
        raise InvoiceError(f"top-up {topup.pk} was not paid ({topup.status})")
    invoice = invoice_issue(
        account=topup.account,
        lines=_lines(topup),
        total_nanos=topup.amount_nanos,
        payment_method=topup.method_label,
        payment_reference=topup.payment_intent_id or f"top-up {topup.pk}",
        paid_at=topup.succeeded_at,
    )
    topup.invoice = invoice
    topup.save(update_fields=["invoice"])
    return invoice


def _lines(topup: TopUp) -> list[InvoiceLine]:
    """Credits purchased, and the bonus at $0.00; or what else the payment
    bought (a gift card)."""
    if topup.purpose == TopUpPurpose.GIFT_CARD:
        return [
            InvoiceLine(
                description=f"AGIPower gift card: {format_usd(topup.amount_nanos)}",
                note="Redeemable once for AGIPower API credits of its amount",
                amount_nanos=topup.amount_nanos,
            )
        ]
    lines = [
        InvoiceLine(
            description="Credits purchased",
            note="Prepaid AGIPower API credits (1 credit = $1 of API usage)",
            amount_nanos=topup.amount_nanos,
        )
    ]
    bonus_nanos = topup.bonus_nanos or _bonus_credited(topup)
    if bonus_nanos > 0:
        rate = Decimal(bonus_nanos * 100) / Decimal(topup.amount_nanos)
        percent = f"{rate.quantize(Decimal('0.01')).normalize():f}%"
        lines.append(
            InvoiceLine(
                description=f"Bonus credits: {format_usd(bonus_nanos)} ({percent})",
                note="Promotional credits at no charge, valid for "
                f"{settings.BONUS_EXPIRY_DAYS} days",
                amount_nanos=0,
            )
        )
    return lines


def _bonus_credited(topup: TopUp) -> int:
    """The bonus the ledger gave for the top-up, when the row does not say."""
    if not topup.payment_intent_id:
        return 0
    entry = (
        LedgerEntry.objects.filter(
            account=topup.account,
            kind=EntryKind.BONUS,
            reference=topup.payment_intent_id,
        )
        .only("amount_nanos")
        .first()
    )
    return entry.amount_nanos if entry else 0
