"""Every write of invoices: issue one per credited top-up, render it to PDF once.

``invoice_issue`` runs inside the payment's transaction, so an invoice number is
taken if and only if the top-up is credited: a rolled-back payment leaves no
gap in the year's sequence.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import Account, BillingProfile
from billing.models import EntryKind, LedgerEntry, TopUp, TopUpStatus
from invoices.models import Invoice, InvoiceCounter
from money import format_usd

logger = logging.getLogger(__name__)

NUMBER_FORMAT = "INV-{year}-{sequence:06d}"

# Printed as the seller when settings.INVOICE_SELLER is not set. Every key is
# optional in the setting; the ones given replace these.
DEFAULT_SELLER = {
    "name": "AGIPower",
    "address_lines": [],
    "email": "support@agipower.ai",
    "website": "agipower.ai",
    "tax_id": "",
}


class InvoiceError(Exception):
    """An invoice that cannot be issued."""


@transaction.atomic
def invoice_issue(*, topup: TopUp) -> Invoice:
    """Issue the invoice of a credited top-up, in the caller's transaction.

    Idempotent: the same top-up again answers with its first invoice. The
    number is the next of the year of issue (UTC), taken under the lock of that
    year's counter row, which is held until the caller commits: numbers are
    gapless, and concurrent payments take them one after another.
    """
    # Lock the top-up first, so two calls for it cannot both issue (and both
    # take a number): the second waits here, then finds the first's invoice.
    topup = (
        TopUp.objects.select_for_update(of=("self",))
        .select_related("account__owner")
        .get(pk=topup.pk)
    )
    existing = Invoice.objects.filter(topup=topup).first()
    if existing is not None:
        return existing
    if topup.status in (TopUpStatus.FAILED, TopUpStatus.CANCELED):
        raise InvoiceError(f"top-up {topup.pk} was not paid ({topup.status})")

    buyer = _buyer_snapshot(topup.account)
    lines = _lines(topup)
    issued_at = timezone.now()
    invoice = Invoice.objects.create(
        # Last of all reads: from here every payment waits for this one's commit.
        number=_number_take(year=issued_at.year),
        account=topup.account,
        topup=topup,
        issued_at=issued_at,
        buyer=buyer,
        lines=lines,
        total_nanos=topup.amount_nanos,
        currency="USD",
        payment_method=topup.method_label[:100],
        payment_reference=(topup.payment_intent_id or f"top-up {topup.pk}")[:100],
    )
    # Robust: the payment is committed by then; if the broker is down, the PDF
    # is rendered when it is first downloaded instead.
    transaction.on_commit(lambda: _render_later(invoice.id), robust=True)
    return invoice


def _render_later(invoice_id: int) -> None:
    # Imported here: tasks imports this module.
    from invoices.tasks import invoice_render_task

    invoice_render_task.delay(invoice_id)


def _number_take(*, year: int) -> str:
    """The next number of ``year``; the counter row stays locked until commit."""
    # Make sure the year's row exists (INSERT … ON CONFLICT DO NOTHING: two
    # first invoices of a year cannot both create it), then lock it.
    InvoiceCounter.objects.bulk_create(
        [InvoiceCounter(year=year, last=0)], ignore_conflicts=True
    )
    counter = InvoiceCounter.objects.select_for_update().get(year=year)
    counter.last += 1
    counter.save(update_fields=["last"])
    return NUMBER_FORMAT.format(year=year, sequence=counter.last)


def _buyer_snapshot(account: Account) -> dict:
    """The billing profile as it is now; without one, who the account is."""
    try:
        profile = BillingProfile.objects.select_related("account__owner").get(
            account=account
        )
    except BillingProfile.DoesNotExist:
        owner = account.owner
        return {
            "name": owner.full_name or account.name,
            "email": owner.email,
            "country": "",
            "address_line1": "",
            "address_line2": "",
            "city": "",
            "state": "",
            "postal_code": "",
            "tax_id": "",
        }
    return profile.snapshot()


def _lines(topup: TopUp) -> list[dict]:
    lines = [
        {
            "description": "Credits purchased",
            "note": "Prepaid AGIPower API credits (1 credit = $1 of API usage)",
            "quantity": 1,
            "amount_nanos": topup.amount_nanos,
        }
    ]
    bonus_nanos = topup.bonus_nanos or _bonus_credited(topup)
    if bonus_nanos > 0:
        rate = Decimal(bonus_nanos * 100) / Decimal(topup.amount_nanos)
        percent = f"{rate.quantize(Decimal('0.01')).normalize():f}%"
        lines.append(
            {
                "description": f"Bonus credits: {format_usd(bonus_nanos)} ({percent})",
                "note": "Promotional credits at no charge, valid for "
                f"{settings.BONUS_EXPIRY_DAYS} days",
                "quantity": 1,
                "amount_nanos": 0,
            }
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


def invoice_render(*, invoice_id: int) -> Invoice:
    """Render the invoice to PDF and store it, once: an invoice that already has
    its file is left as it is (an invoice does not change after it is issued)."""
    with transaction.atomic():
        # Under the row lock, so a download that renders on demand and the
        # Celery task never both render: the second finds the file.
        invoice = (
            Invoice.objects.select_for_update(of=("self",))
            .select_related("topup")
            .get(pk=invoice_id)
        )
        if invoice_is_rendered(invoice):
            return invoice
        started = timezone.now()
        pdf = _pdf_of(invoice)
        invoice.pdf.save(f"{invoice.number}.pdf", ContentFile(pdf), save=False)
        invoice.rendered_at = timezone.now()
        invoice.save(update_fields=["pdf", "rendered_at"])
    logger.info(
        "rendered invoice %s (%d bytes, %.2f s)",
        invoice.number,
        len(pdf),
        (invoice.rendered_at - started).total_seconds(),
    )
    return invoice


def invoice_is_rendered(invoice: Invoice) -> bool:
    return bool(invoice.pdf) and invoice.pdf.storage.exists(invoice.pdf.name)


def seller() -> dict:
    return {**DEFAULT_SELLER, **getattr(settings, "INVOICE_SELLER", {})}


def invoice_html(invoice: Invoice) -> str:
    return render_to_string("invoices/invoice.html", _context(invoice))


def _context(invoice: Invoice) -> dict:
    buyer = invoice.buyer
    city_line = " ".join(
        part
        for part in (
            ", ".join(p for p in (buyer.get("city"), buyer.get("state")) if p),
            buyer.get("postal_code", ""),
        )
        if part
    )
    address = [
        line
        for line in (
            buyer.get("address_line1"),
            buyer.get("address_line2"),
            city_line,
            buyer.get("country"),
        )
        if line
    ]
    topup = invoice.topup
    paid_at: datetime = topup.succeeded_at or invoice.issued_at
    return {
        "invoice": invoice,
        "seller": seller(),
        "buyer": {
            "name": buyer.get("name") or buyer.get("email", ""),
            "email": buyer.get("email", ""),
            "address": address,
            "tax_id": buyer.get("tax_id", ""),
        },
        "lines": [
            {
                **line,
                "unit_price": format_usd(line["amount_nanos"] // line["quantity"]),
                "amount": format_usd(line["amount_nanos"]),
            }
            for line in invoice.lines
        ],
        "subtotal": format_usd(sum(line["amount_nanos"] for line in invoice.lines)),
        "total": format_usd(invoice.total_nanos),
        "paid": format_usd(invoice.total_nanos),
        "due": format_usd(0),
        "paid_at": paid_at,
    }


def _pdf_of(invoice: Invoice) -> bytes:
    # Imported here: WeasyPrint loads Pango and its fonts, which only the
    # processes that render need.
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    # Everything an invoice shows is inline (the logo is an inline SVG, the
    # fonts are the system's DejaVu): it fetches nothing, local or remote.
    no_fetching = URLFetcher(allowed_protocols=())
    return HTML(string=invoice_html(invoice), url_fetcher=no_fetching).write_pdf()
