"""Concurrent payments take distinct, consecutive invoice numbers: threads,
each with its own connection and transaction, against PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import transaction

from billing.ledger.grants import topup_credit
from billing.models import TopUp
from billing.payments.invoicing import topup_invoice_issue
from invoices.models import Invoice, InvoiceCounter
from tests.support.invoices import topup_credit_and_invoice, topup_paid
from tests.support.threads import run_concurrently
from tests.support.world import new_account

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_payments_take_consecutive_numbers():
    # The year's counter row does not exist yet: the first invoices also race
    # to create it.
    assert not InvoiceCounter.objects.exists()
    accounts = [new_account() for _ in range(4)]
    topups = [topup_paid(accounts[i % 4], "10") for i in range(40)]

    results = run_concurrently(
        [lambda t=topup: topup_credit_and_invoice(t) for topup in topups], workers=12
    )

    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == []
    numbers = sorted(invoice.number for invoice in results)
    year = results[0].issued_at.year
    assert numbers == [f"INV-{year}-{n:06d}" for n in range(1, 41)]
    assert InvoiceCounter.objects.get(year=year).last == 40
    assert Invoice.objects.count() == 40
    # One invoice per top-up, each for its own top-up.
    linked = dict(
        TopUp.objects.filter(pk__in=[t.pk for t in topups]).values_list("pk", "invoice")
    )
    assert set(linked.values()) == {invoice.pk for invoice in results}


def test_a_rolled_back_payment_beside_others_leaves_no_gap():
    account = new_account()
    topups = [topup_paid(account, "10") for _ in range(20)]

    class Declined(Exception):
        pass

    def pay(topup, fail: bool):
        with transaction.atomic():
            invoice = topup_credit_and_invoice(topup)
            if fail:
                raise Declined
            return invoice

    results = run_concurrently(
        [lambda t=t, i=i: pay(t, i % 4 == 0) for i, t in enumerate(topups)],
        workers=10,
    )
    invoices = [r for r in results if isinstance(r, Invoice)]
    assert sum(isinstance(r, Declined) for r in results) == 5
    assert len(invoices) == 15
    year = invoices[0].issued_at.year
    assert sorted(i.number for i in invoices) == [
        f"INV-{year}-{n:06d}" for n in range(1, 16)
    ]
    assert InvoiceCounter.objects.get(year=year).last == 15


def test_one_top_up_issued_by_several_workers_at_once_gets_one_invoice():
    account = new_account()
    topup = topup_paid(account, "10")
    topup_credit(
        account=account,
        amount_nanos=topup.amount_nanos,
        idempotency_key=f"topup:{topup.payment_intent_id}",
        reference=topup.payment_intent_id,
    )

    results = run_concurrently(
        [lambda: topup_invoice_issue(topup=topup).pk] * 8, workers=8
    )

    assert [r for r in results if isinstance(r, Exception)] == []
    assert len(set(results)) == 1
    assert Invoice.objects.count() == 1
    assert InvoiceCounter.objects.get().last == 1
