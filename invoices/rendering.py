"""Rendering an issued invoice: its HTML, and its PDF made once and stored.

Apart from issuing (``invoices.services``) because the render task calls it
after the payment commits, and issuing schedules that task: services → tasks →
rendering, no circle.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from invoices.models import Invoice
from money import format_usd

logger = logging.getLogger(__name__)

# Printed as the seller when settings.INVOICE_SELLER is not set. Every key is
# optional in the setting; the ones given replace these.
DEFAULT_SELLER = {
    "name": "AGIPower",
    "address_lines": [],
    "email": "support@agipower.ai",
    "website": "agipower.ai",
    "tax_id": "",
}


def invoice_render(*, invoice_id: int) -> Invoice:
    """Render the invoice to PDF and store it, once: an invoice that already has
    its file is left as it is (an invoice does not change after it is issued)."""
    with transaction.atomic():
        # Under the row lock, so a download that renders on demand and the
        # Celery task never both render: the second finds the file.
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
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
        "paid_at": invoice.paid_at or invoice.issued_at,
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
