from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import Account


class InvoiceCounter(models.Model):
    """The last invoice number of a year. Taken under a row lock in the same
    transaction as the invoice, so numbers have no gaps."""

    year = models.PositiveSmallIntegerField(primary_key=True)
    last = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.year}: {self.last}"


class Invoice(models.Model):
    """One invoice per payment, issued from plain data: who pays, the lines, the
    total and how it was paid. What was paid for (a top-up) points at its
    invoice; an invoice names nothing above it."""

    number = models.CharField(max_length=20, unique=True)  # INV-2026-000042
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    issued_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(
        null=True, blank=True, help_text="When the payment succeeded"
    )
    buyer = models.JSONField(help_text="The billing profile as it was when issued")
    lines = models.JSONField(help_text="[{description, quantity, amount_nanos}]")
    total_nanos = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="USD")
    payment_method = models.CharField(max_length=100)
    payment_reference = models.CharField(max_length=100)
    pdf = models.FileField(upload_to="invoices/%Y/", blank=True)
    rendered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["account", "-issued_at"], name="invoice_account")
        ]

    def __str__(self) -> str:
        return self.number
