"""The console's download of an invoice: /console/invoices/<id>/pdf."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404

from invoices.models import Invoice
from invoices.rendering import invoice_is_rendered, invoice_render
from invoices.selectors import invoice_for_user


def invoice_pdf_response(invoice: Invoice) -> FileResponse:
    """The invoice's PDF as a download named by its number, rendered first if
    the render task has not run yet."""
    if not invoice_is_rendered(invoice):
        invoice = invoice_render(invoice_id=invoice.pk)
    return FileResponse(
        invoice.pdf.open("rb"),
        as_attachment=True,
        filename=f"{invoice.number}.pdf",
        content_type="application/pdf",
    )


@login_required
def invoice_pdf(request, invoice_id: int):
    try:
        invoice = invoice_for_user(user=request.user, invoice_id=invoice_id)
    except Invoice.DoesNotExist:
        raise Http404("No such invoice.") from None
    response = invoice_pdf_response(invoice)
    # An invoice is private: no shared cache keeps a copy.
    response["Cache-Control"] = "private, max-age=0"
    return response
