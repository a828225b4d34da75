"""The Pay As You Go console page: login required, each customer's own numbers."""

from __future__ import annotations

from datetime import UTC

import pytest

from billing.ledger.debits import balance_debit
from billing.ledger.holds import hold_place
from billing.models import EntryKind, LedgerEntry, LotSource
from money import usd_to_nanos
from tests.support import pages
from tests.support.world import grant, new_key

PAYG = "/console/pay-as-you-go"


@pytest.mark.django_db
def test_console_requires_login(client):
    response = client.get(PAYG)

    assert response.status_code == 302
    assert response["Location"] == f"/login?next={PAYG}"


@pytest.mark.django_db
def test_console_root_redirects_to_pay_as_you_go(client):
    response = client.get("/console/")

    assert response.status_code == 302
    assert response["Location"] == PAYG


def test_site_root_leads_to_the_console(client, alice):
    client.force_login(alice)

    assert client.get("/")["Location"] == PAYG


def test_alice_sees_her_balances_breakdown_and_history(client, alice):
    grant(alice, "7.5", source=LotSource.COMPENSATION, reason="Outage on Nov 3")
    client.force_login(alice)

    response = client.get(PAYG)

    assert response.status_code == 200
    assert pages.amount(response, "balance-total") == "$57.50"
    assert pages.amount(response, "balance-topup") == "$0.00"
    assert pages.amount(response, "balance-bonus") == "$57.50"
    assert pages.texts(response, "balance-held") == []
    assert pages.amount(response, "breakdown-gifts") == "$50.00"
    assert pages.amount(response, "breakdown-compensations") == "$7.50"
    assert pages.amount(response, "breakdown-top-ups") == "$0.00"
    assert pages.amount(response, "breakdown-total") == "$57.50"
    assert "Total Balance" in pages.text(response, "breakdown-total")
    rows = pages.texts(response, "transaction-row")
    assert len(rows) == 2
    assert "$7.50" in rows[0] and "Compensation" in rows[0]
    assert "Outage on Nov 3" in rows[0]
    assert "$50.00" in rows[1] and "Gift" in rows[1] and "welcome gift" in rows[1]


def test_every_breakdown_line_is_shown(client, alice):
    client.force_login(alice)

    response = client.get(PAYG)

    labels = [
        ("top-ups", "Top-ups"),
        ("bonuses", "Bonuses"),
        ("gifts", "Gifts"),
        ("referrals", "Referrals"),
        ("compensations", "Compensations"),
        ("adjustments", "Adjustments"),
        ("expired", "Expired"),
        ("usage", "Usage"),
        ("refunds", "Refunds"),
        ("total", "Total Balance"),
    ]
    for key, label in labels:
        assert pages.text(response, f"breakdown-{key}").startswith(label)


def test_bob_never_sees_alices_numbers(client, alice, bob):
    client.force_login(bob)

    response = client.get(PAYG)
    html = response.content.decode()

    assert pages.amount(response, "balance-total") == "$0.00"
    assert pages.amount(response, "balance-bonus") == "$0.00"
    assert pages.amount(response, "breakdown-gifts") == "$0.00"
    assert pages.texts(response, "transaction-row") == []
    assert "$50.00" not in html
    assert "welcome gift" not in html
    assert "alice@example.com" not in html
    # Nor by asking for another page of history.
    assert "welcome gift" not in client.get(PAYG + "?page=2").content.decode()


def test_usage_is_one_row_per_day_with_sub_cent_precision(client, alice):
    for _ in range(3):
        balance_debit(
            account=alice.account,
            amount_nanos=1_000_000,  # $0.001
            idempotency_key=new_key("usage"),
            kind=EntryKind.USAGE,
        )
    client.force_login(alice)

    response = client.get(PAYG)

    rows = pages.texts(response, "transaction-row")
    assert len(rows) == 2
    assert "-$0.0030" in rows[0]
    assert "API usage" in rows[0] and "3 API requests" in rows[0]
    assert pages.amount(response, "breakdown-usage") == "-$0.0030"
    assert pages.amount(response, "balance-total") == "$50.00"  # 49.997, rounded


def test_held_credits_show_only_when_non_zero(client, alice):
    client.force_login(alice)
    assert pages.texts(client.get(PAYG), "balance-held") == []

    hold_place(account=alice.account, amount_nanos=usd_to_nanos("1.25"))

    response = client.get(PAYG)
    assert pages.amount(response, "balance-held") == "$1.25"
    assert pages.amount(response, "balance-total") == "$50.00"


def test_history_is_paginated_25_to_a_page_newest_first(client, alice):
    for n in range(30):
        grant(alice, "1", reason=f"grant {n}")
    client.force_login(alice)

    first = client.get(PAYG)
    second = client.get(PAYG + "?page=2")
    beyond = client.get(PAYG + "?page=99")

    first_rows = pages.texts(first, "transaction-row")
    second_rows = pages.texts(second, "transaction-row")
    assert len(first_rows) == 25
    assert len(second_rows) == 6  # 30 grants and the welcome gift
    assert "grant 29" in first_rows[0]
    assert "welcome gift" in second_rows[-1]
    assert "Page 2 of 2" in second.content.decode()
    assert pages.texts(beyond, "transaction-row") == second_rows
    assert first.context["page"].paginator.count == 31


def test_history_dates_are_shown_in_utc(client, alice):
    entry = LedgerEntry.objects.get(account=alice.account)
    client.force_login(alice)

    response = client.get(PAYG)

    when = entry.created_at.astimezone(UTC)
    shown = f"{when:%b} {when.day}, {when:%Y, %H:%M}"
    assert shown in pages.texts(response, "transaction-row")[0]


def test_the_page_shows_who_is_signed_in_and_a_logout_button(client, alice):
    client.force_login(alice)

    response = client.get(PAYG)
    html = response.content.decode()

    assert pages.text(response, "user-email") == "alice@example.com"
    assert 'action="/logout"' in html
    assert 'aria-current="page"' in html


def test_staff_have_a_billing_account_and_its_empty_page(client, ops):
    client.force_login(ops)

    response = client.get(PAYG)

    assert response.status_code == 200
    assert pages.amount(response, "balance-total") == "$0.00"
