"""Operators' view of invoices: read-only (an issued invoice never changes),
each with a link to its PDF."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from invoices.models import Invoice
from invoices.views import invoice_pdf_response
from money import format_usd


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = ("number", "account_email", "issued_at", "total", "pdf_link")
    list_select_related = ("account__owner",)
    search_fields = ("number", "account__owner__email", "payment_reference")
    date_hierarchy = "issued_at"
    ordering = ("-issued_at", "-id")
    fields = (
        "number",
        "account",
        "issued_at",
        "paid_at",
        "buyer_lines",
        "line_items",
        "total",
        "payment_method",
        "payment_reference",
        "rendered_at",
        "pdf_link",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="account", ordering="account__owner__email")
    def account_email(self, invoice: Invoice) -> str:
        return invoice.account.owner.email

    @admin.display(description="total", ordering="total_nanos")
    def total(self, invoice: Invoice) -> str:
        return format_usd(invoice.total_nanos)

    @admin.display(description="buyer")
    def buyer_lines(self, invoice: Invoice) -> str:
        return format_html_join(
            "", "{}<br>", ((v,) for v in invoice.buyer.values() if v)
        )

    @admin.display(description="lines")
    def line_items(self, invoice: Invoice) -> str:
        return format_html_join(
            "",
            "{}: {}<br>",
            (
                (line["description"], format_usd(line["amount_nanos"]))
                for line in invoice.lines
            ),
        )

    @admin.display(description="PDF")
    def pdf_link(self, invoice: Invoice) -> str:
        url = reverse("admin:invoices_invoice_pdf", args=[invoice.pk])
        return format_html('<a href="{}">{}.pdf</a>', url, invoice.number)

    def get_urls(self):
        pdf = path(
            "<int:invoice_id>/pdf/",
            self.admin_site.admin_view(self.pdf_view),
            name="invoices_invoice_pdf",
        )
        return [pdf, *super().get_urls()]

    def pdf_view(self, request, invoice_id: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        invoice = get_object_or_404(Invoice, pk=invoice_id)
        return invoice_pdf_response(invoice)
