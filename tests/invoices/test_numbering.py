"""Invoice numbers are gapless per year (INV-2026-000001, …), one invoice per
top-up, and taken only if the payment's transaction commits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import transaction

from billing.models import TopUp, TopUpStatus
from billing.payments.invoicing import topup_invoice_issue
from invoices.models import Invoice, InvoiceCounter
from invoices.services import InvoiceError, InvoiceLine, invoice_issue
from money import usd_to_nanos
from tests.support.invoices import issue, issue_at, topup_credit_and_invoice, topup_paid

USD = 1_000_000_000


def moment(year: int, month: int = 6, day: int = 1, hour: int = 12) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def test_numbers_follow_each_other_within_a_year(alice, bob):
    numbers = [
        issue_at(moment(2026, 1, 1, 0), alice.account).number,
        issue_at(moment(2026, 3, 9), bob.account).number,
        issue_at(moment(2026, 12, 31, 23), alice.account).number,
    ]
    assert numbers == ["INV-2026-000001", "INV-2026-000002", "INV-2026-000003"]
    assert InvoiceCounter.objects.get(year=2026).last == 3


def test_a_new_year_starts_at_one(alice):
    assert issue_at(moment(2026, 12, 31, 23), alice.account).number == (
        "INV-2026-000001"
    )
    assert issue_at(moment(2027, 1, 1, 0), alice.account).number == "INV-2027-000001"
    assert issue_at(moment(2027, 1, 2), alice.account).number == "INV-2027-000002"
    # A late invoice of the old year (issued under its clock) continues it.
    assert issue_at(moment(2026, 12, 31, 23), alice.account).number == (
        "INV-2026-000002"
    )
    assert dict(InvoiceCounter.objects.values_list("year", "last")) == {
        2026: 2,
        2027: 2,
    }


def test_issuing_twice_answers_with_the_first_invoice(alice):
    topup = topup_paid(alice.account, "100")
    first = topup_credit_and_invoice(topup)
    again = topup_invoice_issue(topup=topup)
    # The payments code may run again (a webhook retried): same invoice.
    replayed = topup_credit_and_invoice(topup)
    assert again.pk == first.pk == replayed.pk
    assert again.number.endswith("-000001")
    assert Invoice.objects.count() == 1
    assert InvoiceCounter.objects.get().last == 1


def test_a_rolled_back_payment_takes_no_number(alice):
    class PaymentFailedLater(Exception):
        pass

    with pytest.raises(PaymentFailedLater), transaction.atomic():
        rolled_back = issue_at(moment(2026, 5, 1), alice.account)
        assert rolled_back.number == "INV-2026-000001"
        raise PaymentFailedLater

    assert Invoice.objects.count() == 0
    assert issue_at(moment(2026, 5, 2), alice.account).number == "INV-2026-000001"


def test_the_invoice_snapshots_the_sale(alice, alice_profile):
    invoice = issue(alice.account, "100")
    topup = TopUp.objects.get(invoice=invoice)

    assert invoice.account == alice.account
    assert invoice.total_nanos == 100 * USD
    assert invoice.currency == "USD"
    assert invoice.lines == [
        {
            "description": "Credits purchased",
            "note": "Prepaid AGIPower API credits (1 credit = $1 of API usage)",
            "quantity": 1,
            "amount_nanos": 100 * USD,
        },
        {
            "description": "Bonus credits: $20.00 (20%)",
            "note": "Promotional credits at no charge, valid for 365 days",
            "quantity": 1,
            "amount_nanos": 0,
        },
    ]
    assert sum(line["amount_nanos"] for line in invoice.lines) == invoice.total_nanos
    assert invoice.payment_method == "Stripe (Visa •••• 4242)"
    assert invoice.payment_reference == topup.payment_intent_id
    assert invoice.paid_at == topup.succeeded_at
    assert invoice.buyer == {
        "name": "Wonderland Analytics Ltd",
        "email": "alice@example.com",
        "country": "GB",
        "address_line1": "12 Rabbit Hole Lane",
        "address_line2": "Suite 4",
        "city": "Oxford",
        "state": "",
        "postal_code": "OX1 1AA",
        "tax_id": "GB123456789",
    }


def test_a_later_change_of_the_billing_profile_leaves_the_invoice_alone(
    alice, alice_profile
):
    invoice = issue(alice.account, "100")
    alice_profile.name = "Looking Glass plc"
    alice_profile.save()
    invoice.refresh_from_db()
    assert invoice.buyer["name"] == "Wonderland Analytics Ltd"
    assert issue(alice.account, "5").buyer["name"] == "Looking Glass plc"


def test_without_a_billing_profile_the_owner_is_billed(bob):
    invoice = issue(bob.account, "5")
    assert invoice.buyer["name"] == "Bob"
    assert invoice.buyer["email"] == "bob@example.com"
    assert invoice.buyer["address_line1"] == ""


def test_the_bonus_is_read_from_the_ledger_when_the_top_up_does_not_say(alice):
    invoice = issue(alice.account, "50", bonus_nanos=0)
    assert invoice.lines[1]["description"] == "Bonus credits: $10.00 (20%)"


def test_no_bonus_no_bonus_line(alice, settings):
    settings.BONUS_RATE = 0
    invoice = issue(alice.account, "50", bonus_nanos=0)
    assert [line["description"] for line in invoice.lines] == ["Credits purchased"]


def test_an_uneven_bonus_states_its_exact_rate(alice):
    invoice = issue(alice.account, "30", bonus_nanos=usd_to_nanos("7.5"))
    assert invoice.lines[1]["description"] == "Bonus credits: $7.50 (25%)"


@pytest.mark.parametrize("status", [TopUpStatus.FAILED, TopUpStatus.CANCELED])
def test_an_unpaid_top_up_gets_no_invoice(alice, status):
    topup = topup_paid(alice.account, "100", status=status, succeeded_at=None)
    with pytest.raises(InvoiceError):
        topup_invoice_issue(topup=topup)
    assert not Invoice.objects.exists()
    assert not InvoiceCounter.objects.exists()


def test_an_invoice_is_issued_from_plain_data(alice, alice_profile):
    paid_at = moment(2026, 4, 1)
    invoice = invoice_issue(
        account=alice.account,
        lines=[InvoiceLine(description="Credits purchased", amount_nanos=5 * USD)],
        total_nanos=5 * USD,
        payment_method="Bank transfer",
        payment_reference="wire 42",
        paid_at=paid_at,
    )
    assert invoice.number.endswith("-000001")
    assert invoice.lines == [
        {
            "description": "Credits purchased",
            "note": "",
            "quantity": 1,
            "amount_nanos": 5 * USD,
        }
    ]
    assert (invoice.payment_reference, invoice.paid_at) == ("wire 42", paid_at)
    assert invoice.buyer["name"] == "Wonderland Analytics Ltd"


def test_lines_that_do_not_add_up_to_the_total_are_refused(alice):
    with pytest.raises(InvoiceError):
        invoice_issue(
            account=alice.account,
            lines=[InvoiceLine(description="Credits purchased", amount_nanos=USD)],
            total_nanos=2 * USD,
            payment_method="Bank transfer",
            payment_reference="wire 43",
        )
    assert not InvoiceCounter.objects.exists()
