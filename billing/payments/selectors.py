"""Reads of payments."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Q
from django.utils import timezone

from accounts.models import Account
from billing.ledger.selectors import Transaction
from billing.models import EntryKind, SelfRefund, SelfRefundStatus, TopUp
from billing.payments.self_refunds import self_refund_open


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


@dataclass(frozen=True)
class TopUpRefundState:
    """What the history shows on a top-up's row about refunding it: may it be
    refunded here now, and how its latest self-service refund stands."""

    topup_id: int
    refundable: bool
    status: str  # the latest self-service refund's status, or ""
    status_label: str


def topup_refund_states(
    *, account: Account, rows: Iterable[Transaction]
) -> dict[str, TopUpRefundState]:
    """{transaction id: refund state} for the top-up rows of a page of the
    account's history, in two queries."""
    entry_ids = [
        int(row.id) for row in rows if row.kind == EntryKind.TOPUP and row.id.isdigit()
    ]
    if not entry_ids:
        return {}
    topups = list(TopUp.objects.filter(account=account, entry_id__in=entry_ids))
    latest: dict[int, SelfRefund] = {}
    for refund in SelfRefund.objects.filter(topup__in=topups).order_by("created_at"):
        latest[refund.topup_id] = refund
    now = timezone.now()
    states = {}
    for topup in topups:
        refund = latest.get(topup.pk)
        in_progress = refund is not None and refund.status == SelfRefundStatus.REFUNDING
        states[str(topup.entry_id)] = TopUpRefundState(
            topup_id=topup.pk,
            refundable=self_refund_open(topup, now=now)
            and not in_progress
            and not topup.disputed,
            status=refund.status if refund else "",
            status_label=refund.get_status_display() if refund else "",
        )
    return states
