"""Issuing invoices: a gapless number per year and a snapshot of the buyer.

An invoice is issued from plain data (the account, the lines, the total, how it
was paid); what was paid for is the caller's business, and the caller keeps the
invoice it got (a top-up points at its invoice), which is how a payment gets
one invoice however often it is reported.

``invoice_issue`` runs inside the payment's transaction, so an invoice number is
taken if and only if the payment is recorded: a rolled-back payment leaves no
gap in the year's sequence. The PDF is rendered after the commit
(``invoices.rendering``, by a Celery task).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.models import Account, BillingProfile
from invoices.models import Invoice, InvoiceCounter
from invoices.tasks import invoice_render_task

NUMBER_FORMAT = "INV-{year}-{sequence:06d}"


class InvoiceError(Exception):
    """An invoice that cannot be issued."""


@dataclass(frozen=True, kw_only=True)
class InvoiceLine:
    """One line of an invoice, stored as it is (``Invoice.lines``)."""

    description: str
    note: str = ""
    quantity: int = 1
    amount_nanos: int


@transaction.atomic
def invoice_issue(
    *,
    account: Account,
    lines: Sequence[InvoiceLine],
    total_nanos: int,
    payment_method: str,
    payment_reference: str,
    paid_at: datetime | None = None,
    currency: str = "USD",
) -> Invoice:
    """Issue an invoice for a payment, in the caller's transaction.

    The number is the next of the year of issue (UTC), taken under the lock of
    that year's counter row, which is held until the caller commits: numbers are
    gapless, and concurrent payments take them one after another. Each call
    issues a new invoice: the caller issues once per payment.
    """
    if not lines:
        raise InvoiceError("an invoice has at least one line")
    if sum(line.amount_nanos for line in lines) != total_nanos:
        raise InvoiceError("the lines do not add up to the total")
    buyer = _buyer_snapshot(account)
    issued_at = timezone.now()
    invoice = Invoice.objects.create(
        # Last of all reads: from here every payment waits for this one's commit.
        number=_number_take(year=issued_at.year),
        account=account,
        issued_at=issued_at,
        paid_at=paid_at,
        buyer=buyer,
        lines=[asdict(line) for line in lines],
        total_nanos=total_nanos,
        currency=currency,
        payment_method=payment_method[:100],
        payment_reference=payment_reference[:100],
    )
    # Robust: the payment is committed by then; if the broker is down, the PDF
    # is rendered when it is first downloaded instead.
    transaction.on_commit(
        lambda: invoice_render_task.delay(invoice.id),
        robust=True,
    )
    return invoice


def _number_take(*, year: int) -> str:
    """The next number of ``year``; the counter row stays locked until commit."""
    # Make sure the year's row exists (INSERT … ON CONFLICT DO NOTHING: two
    # first invoices of a year cannot both create it), then lock it.
    InvoiceCounter.objects.bulk_create(
        [InvoiceCounter(year=year, last=0)], ignore_conflicts=True
    )
    counter = InvoiceCounter.objects.select_for_update().get(year=year)
    counter.last += 1
    counter.save(update_fields=["last"])
    return NUMBER_FORMAT.format(year=year, sequence=counter.last)


def _buyer_snapshot(account: Account) -> dict:
    """The billing profile as it is now; without one, who the account is."""
    try:
        profile = BillingProfile.objects.select_related("account__owner").get(
            account=account
        )
    except BillingProfile.DoesNotExist:
        owner = account.owner
        return {
            "name": owner.full_name or account.name,
            "email": owner.email,
            "country": "",
            "address_line1": "",
            "address_line2": "",
            "city": "",
            "state": "",
            "postal_code": "",
            "tax_id": "",
        }
    return profile.snapshot()
