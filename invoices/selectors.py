"""Reads of invoices: one for its owner, and the invoices of a history page."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q

from accounts.models import User
from billing.ledger.selectors import Transaction
from billing.models import EntryKind
from invoices.models import Invoice


def invoice_for_user(*, user: User, invoice_id: int) -> Invoice:
    """The invoice if it belongs to the user's account; ``Invoice.DoesNotExist``
    otherwise (an invoice of someone else is as absent as one that never was)."""
    return Invoice.objects.select_related("topup").get(
        pk=invoice_id, account__owner=user
    )


def invoice_ids_for_transactions(
    *, user: User, rows: Iterable[Transaction]
) -> dict[str, int]:
    """{transaction id: invoice id} for the top-up rows of a history page, in
    one query.

    A top-up's journal entry is its row (``TopUp.entry``), and its payment
    intent is the row's reference: either finds the invoice.
    """
    topups = [row for row in rows if row.kind == EntryKind.TOPUP]
    if not topups:
        return {}
    entry_ids = [int(row.id) for row in topups if row.id.isdigit()]
    references = [row.reference for row in topups if row.reference]
    found = Invoice.objects.filter(
        Q(topup__entry_id__in=entry_ids) | Q(topup__payment_intent_id__in=references),
        account__owner=user,
    ).values_list("id", "topup__entry_id", "topup__payment_intent_id")
    by_entry: dict[int, int] = {}
    by_reference: dict[str, int] = {}
    for invoice_id, entry_id, payment_intent_id in found:
        if entry_id is not None:
            by_entry[entry_id] = invoice_id
        if payment_intent_id:
            by_reference[payment_intent_id] = invoice_id
    ids = {}
    for row in topups:
        invoice_id = by_entry.get(int(row.id)) if row.id.isdigit() else None
        if invoice_id is None and row.reference:
            invoice_id = by_reference.get(row.reference)
        if invoice_id is not None:
            ids[row.id] = invoice_id
    return ids
