"""Reads of invoices."""

from __future__ import annotations

from accounts.models import User
from invoices.models import Invoice


def invoice_for_user(*, user: User, invoice_id: int) -> Invoice:
    """The invoice if it belongs to the user's account; ``Invoice.DoesNotExist``
    otherwise (an invoice of someone else is as absent as one that never was)."""
    return Invoice.objects.get(pk=invoice_id, account__owner=user)
