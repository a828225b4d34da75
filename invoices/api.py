"""REST: GET /api/v1/invoices/{id}/pdf."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.views import APIView

from invoices.models import Invoice
from invoices.selectors import invoice_for_user
from invoices.views import invoice_pdf_response


class InvoicePdfView(APIView):
    def perform_content_negotiation(self, request, force=False):
        # The answer is a PDF, whatever the client accepts (``Accept:
        # application/pdf`` included); errors stay JSON.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        operation_id="invoice_pdf",
        summary="Download an invoice as PDF",
        responses={
            (200, "application/pdf"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The invoice, INV-YYYY-NNNNNN.pdf"
            ),
            404: OpenApiResponse(description="No invoice of yours has this id"),
        },
    )
    def get(self, request, invoice_id: int):
        try:
            invoice = invoice_for_user(user=request.user, invoice_id=invoice_id)
        except Invoice.DoesNotExist:
            raise Http404("No such invoice.") from None
        response = invoice_pdf_response(invoice)
        response["Cache-Control"] = "private, max-age=0"
        return response
