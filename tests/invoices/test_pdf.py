"""The invoice PDF: rendered once by WeasyPrint after the payment commits, with
the number, the buyer, the lines, the total and the payment reference."""

from __future__ import annotations

import os
import shutil

import pytest
from django.utils import timezone

from invoices.models import Invoice
from invoices.rendering import invoice_html, invoice_render
from tests.support.invoices import (
    issue,
    pdf_page_png,
    pdf_pages,
    pdf_text,
    topup_credit_and_invoice,
    topup_paid,
)


def test_the_payment_commit_renders_the_pdf(
    alice, alice_profile, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invoice = issue(alice.account, "100")
    invoice.refresh_from_db()
    assert invoice.rendered_at is not None
    assert invoice.pdf.name == (f"invoices/{timezone.now():%Y}/{invoice.number}.pdf")
    with invoice.pdf.open("rb") as pdf:
        assert pdf.read(5) == b"%PDF-"


def test_nothing_is_rendered_before_the_payment_commits(alice):
    # No on_commit here: the surrounding test transaction never commits.
    invoice = issue(alice.account, "100")
    invoice.refresh_from_db()
    assert not invoice.pdf
    assert invoice.rendered_at is None


def test_the_pdf_states_the_invoice(alice, alice_profile, tmp_path):
    invoice = issue(alice.account, "100")
    invoice = invoice_render(invoice_id=invoice.pk)
    text = pdf_text(invoice.pdf.path, tmp_path)
    flat = " ".join(text.split())

    assert "INVOICE" in text
    assert invoice.number in text
    assert "PAID" in text
    # Seller and buyer, with the buyer's address and tax ID.
    assert "AGIPower" in text
    assert "Wonderland Analytics Ltd" in text
    assert "12 Rabbit Hole Lane" in text
    assert "Suite 4" in text
    assert "Oxford OX1 1AA" in text
    assert "GB123456789" in text
    assert "alice@example.com" in text
    # Lines: the credits at $100.00, the bonus stated and charged $0.00.
    assert "Credits purchased" in flat
    assert "Bonus credits: $20.00 (20%)" in flat
    credits, bonus = (
        next(line for line in text.splitlines() if line.startswith(start))
        for start in ("Credits purchased", "Bonus credits")
    )
    # Qty, unit price, amount.
    assert credits.split()[-3:] == ["1", "$100.00", "$100.00"]
    assert bonus.split()[-3:] == ["1", "$0.00", "$0.00"]
    assert "Total (USD) $100.00" in flat
    assert "Amount paid $100.00" in flat
    assert "Amount due $0.00" in flat
    # How it was paid.
    assert "Stripe (Visa •••• 4242)" in flat
    assert invoice.payment_reference in text
    assert invoice.payment_reference.startswith("pi_test_")
    assert f"{invoice.issued_at:%b} {invoice.issued_at.day}, " in text
    assert pdf_pages(invoice.pdf.path, tmp_path) == 1


def test_an_account_without_a_billing_profile_is_billed_by_name_and_email(
    bob, tmp_path
):
    invoice = issue(bob.account, "12.50", card=False)
    invoice = invoice_render(invoice_id=invoice.pk)
    text = pdf_text(invoice.pdf.path, tmp_path)
    flat = " ".join(text.split())
    assert "Bob" in text
    assert "bob@example.com" in text
    assert "profile" not in flat.lower()
    assert "None" not in text
    assert "Stripe (Alipay)" in flat
    assert "Bonus credits: $2.50 (20%)" in flat
    assert "Total (USD) $12.50" in flat


def test_the_pdf_is_rendered_once(alice, tmp_path):
    invoice = issue(alice.account, "100")
    first = invoice_render(invoice_id=invoice.pk)
    content = first.pdf.read()
    first.pdf.close()
    again = invoice_render(invoice_id=invoice.pk)
    assert (again.pdf.name, again.rendered_at) == (first.pdf.name, first.rendered_at)
    assert again.pdf.read() == content
    again.pdf.close()
    assert Invoice.objects.get(pk=invoice.pk).rendered_at == first.rendered_at


def test_the_invoice_loads_nothing_from_anywhere(alice, alice_profile):
    html = invoice_html(issue(alice.account, "100"))
    for reference in ("http:", "https:", "src=", "url(", "@import", "@font-face"):
        assert reference not in html.replace("http://www.w3.org/2000/svg", "")


def test_a_picture_of_page_one(alice, alice_profile, tmp_path):
    """Page 1 as a PNG at 60 dpi: an A4 page (about 496 × 702 pixels). Set
    INVOICE_PNG_DIR to keep it and the PDF, and look at them."""
    invoice = topup_credit_and_invoice(topup_paid(alice.account, "100"))
    invoice = invoice_render(invoice_id=invoice.pk)
    png = pdf_page_png(invoice.pdf.path, tmp_path / "page-1.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    header = png.read_bytes()[16:24]
    width, height = int.from_bytes(header[:4]), int.from_bytes(header[4:])
    assert abs(width - 496) <= 1
    assert abs(height - 702) <= 1
    if keep := os.environ.get("INVOICE_PNG_DIR"):
        shutil.copy(png, keep)
        shutil.copy(invoice.pdf.path, keep)


@pytest.mark.parametrize("amount", ["5", "25000", "1234.56"])
def test_every_amount_fits_one_page(alice, alice_profile, tmp_path, amount):
    invoice = invoice_render(invoice_id=issue(alice.account, amount).pk)
    assert pdf_pages(invoice.pdf.path, tmp_path) == 1


def test_the_seller_comes_from_settings(bob, settings, tmp_path):
    settings.INVOICE_SELLER = {
        "address_lines": ["AGIPower Inc.", "548 Market Street", "San Francisco, CA"],
        "tax_id": "EIN 12-3456789",
        "email": "billing@agipower.ai",
    }
    invoice = invoice_render(invoice_id=issue(bob.account, "40").pk)
    text = pdf_text(invoice.pdf.path, tmp_path)
    for shown in (
        "548 Market Street",
        "San Francisco, CA",
        "Tax ID: EIN 12-3456789",
        "billing@agipower.ai",
        "agipower.ai",  # the default website, kept
    ):
        assert shown in text
    assert "support@agipower.ai" not in text
    if keep := os.environ.get("INVOICE_PNG_DIR"):
        pdf_page_png(invoice.pdf.path, tmp_path / "bob.png")
        shutil.copy(tmp_path / "bob.png", keep)
