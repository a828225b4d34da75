"""Reads of payments."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q

from accounts.models import Account
from billing.ledger.selectors import Transaction
from billing.models import EntryKind, TopUp


def topup_invoice_ids(
    *, account: Account, rows: Iterable[Transaction]
) -> dict[str, int]:
    """{transaction id: invoice id} for the top-up rows of a page of the
    account's history, in one query.

    A top-up's journal entry is its row (``TopUp.entry``), and its payment
    intent is the row's reference: either finds the top-up, which points at its
    invoice.
    """
    topups = [row for row in rows if row.kind == EntryKind.TOPUP]
    if not topups:
        return {}
    entry_ids = [int(row.id) for row in topups if row.id.isdigit()]
    references = [row.reference for row in topups if row.reference]
    found = TopUp.objects.filter(
        Q(entry_id__in=entry_ids) | Q(payment_intent_id__in=references),
        account=account,
        invoice__isnull=False,
    ).values_list("invoice_id", "entry_id", "payment_intent_id")
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
