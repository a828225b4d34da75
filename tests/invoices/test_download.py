"""Downloading an invoice: GET /api/v1/invoices/{id}/pdf (console session or
management key) and /console/invoices/<id>/pdf; the transaction history links
top-up rows to their invoice, with one query for a whole page."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apikeys.models import KeyKind
from billing.models import LotSource, TopUp
from tests.support.invoices import issue, pdf_text
from tests.support.keys import bearer, make_key
from tests.support.world import grant


@pytest.fixture
def alices_invoice(alice, alice_profile):
    return issue(alice.account, "100")


def _session(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def _assert_is_the_pdf(response, invoice, tmp_path):
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == (
        f'attachment; filename="{invoice.number}.pdf"'
    )
    assert "private" in response["Cache-Control"]
    body = b"".join(response.streaming_content)
    assert body.startswith(b"%PDF-")
    assert invoice.number in pdf_text(body, tmp_path)


def test_the_owner_downloads_the_pdf_by_session(alice, alices_invoice, tmp_path):
    response = _session(alice).get(f"/api/v1/invoices/{alices_invoice.pk}/pdf")
    _assert_is_the_pdf(response, alices_invoice, tmp_path)


def test_the_owner_downloads_the_pdf_by_management_key(alice, alices_invoice, tmp_path):
    client = bearer(make_key(alice, kind=KeyKind.MANAGEMENT).secret)
    response = client.get(
        f"/api/v1/invoices/{alices_invoice.pk}/pdf", HTTP_ACCEPT="application/pdf"
    )
    _assert_is_the_pdf(response, alices_invoice, tmp_path)
    # A trailing slash is accepted as well.
    assert client.get(f"/api/v1/invoices/{alices_invoice.pk}/pdf/").status_code == 200


def test_the_pdf_is_rendered_on_demand_then_kept(alice, alices_invoice):
    assert not alices_invoice.pdf  # the render task has not run
    client = _session(alice)
    first = b"".join(client.get(f"/api/v1/invoices/{alices_invoice.pk}/pdf"))
    alices_invoice.refresh_from_db()
    assert alices_invoice.rendered_at is not None
    rendered_at = alices_invoice.rendered_at
    second = b"".join(client.get(f"/console/invoices/{alices_invoice.pk}/pdf"))
    alices_invoice.refresh_from_db()
    assert alices_invoice.rendered_at == rendered_at
    assert first == second


def test_the_console_download(alice, alices_invoice, tmp_path):
    client = _session(alice)
    response = client.get(f"/console/invoices/{alices_invoice.pk}/pdf")
    _assert_is_the_pdf(response, alices_invoice, tmp_path)


def test_bob_cannot_download_alices_invoice(bob, alices_invoice):
    url = f"/api/v1/invoices/{alices_invoice.pk}/pdf"
    assert _session(bob).get(url).status_code == 404
    key = bearer(make_key(bob, kind=KeyKind.MANAGEMENT).secret)
    assert key.get(url).status_code == 404
    response = _session(bob).get(f"/console/invoices/{alices_invoice.pk}/pdf")
    assert response.status_code == 404


def test_an_unknown_invoice_is_404(alice, alices_invoice):
    response = _session(alice).get(f"/api/v1/invoices/{alices_invoice.pk + 1}/pdf")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


def test_staff_without_an_account_get_404_in_the_console(ops, alices_invoice):
    client = _session(ops)
    assert client.get(f"/api/v1/invoices/{alices_invoice.pk}/pdf").status_code == 404
    assert client.get(f"/console/invoices/{alices_invoice.pk}/pdf").status_code == 404


def test_nobody_signed_in_gets_nothing(alices_invoice):
    api = APIClient().get(f"/api/v1/invoices/{alices_invoice.pk}/pdf")
    assert api.status_code == 401
    console = APIClient().get(f"/console/invoices/{alices_invoice.pk}/pdf")
    assert console.status_code == 302
    assert console["Location"].startswith("/login")


def test_a_payg_key_cannot_download(alice, alices_invoice):
    client = bearer(make_key(alice).secret)
    assert client.get(f"/api/v1/invoices/{alices_invoice.pk}/pdf").status_code == 401


# --- the transaction history -------------------------------------------------------


def test_the_history_links_top_up_rows_to_their_invoice(alice, alices_invoice):
    response = _session(alice).get("/console/pay-as-you-go")
    assert response.status_code == 200
    html = response.content.decode()
    links = re.findall(
        r'<a href="([^"]+)" data-testid="invoice-link"[^>]*>([^<]+)</a>', html
    )
    # One link, on the top-up row (not on its bonus, not on the welcome gift).
    assert links == [(f"/console/invoices/{alices_invoice.pk}/pdf", "View Invoice")]
    rows = re.findall(r'<tr data-testid="transaction-row">(.*?)</tr>', html, re.S)
    [linked] = [row for row in rows if "invoice-link" in row]
    assert "Top-up" in linked and "$100.00" in linked


def test_the_api_gives_the_invoice_url_of_top_up_rows(alice, alices_invoice):
    results = _session(alice).get("/api/v1/transactions").json()["results"]
    urls = {row["type"]: row["invoice_url"] for row in results}
    assert urls == {
        "topup": f"http://testserver/api/v1/invoices/{alices_invoice.pk}/pdf",
        "bonus": None,
        "gift": None,
    }


def test_a_top_up_row_is_found_by_its_payment_intent_alone(alice, alice_profile):
    # A top-up row whose TopUp does not point at the journal entry: the
    # reference (the payment intent) finds the invoice.
    invoice = issue(alice.account, "100")
    TopUp.objects.filter(invoice=invoice).update(entry=None)
    results = _session(alice).get("/api/v1/transactions").json()["results"]
    [url] = [row["invoice_url"] for row in results if row["type"] == "topup"]
    assert url.endswith(f"/api/v1/invoices/{invoice.pk}/pdf")


def test_bob_sees_no_link_to_anything_of_alice(alice, bob, alices_invoice):
    grant(bob.account, 5_000_000_000, LotSource.GIFT)
    results = _session(bob).get("/api/v1/transactions").json()["results"]
    assert [row["invoice_url"] for row in results] == [None]


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_one_query_finds_the_invoices_of_a_page(alice, alice_profile):
    client = _session(alice)
    issue(alice.account, "10")
    one = {
        url: _queries(client, url)
        for url in ("/console/pay-as-you-go", "/api/v1/transactions")
    }
    for amount in ("11", "12", "13", "14", "15"):
        issue(alice.account, amount)
    many = {url: _queries(client, url) for url in one}
    assert many == one
    results = client.get("/api/v1/transactions").json()["results"]
    assert sum(row["invoice_url"] is not None for row in results) == 6


def test_the_page_without_top_ups_asks_nothing_about_invoices(alice):
    client = _session(alice)
    with CaptureQueriesContext(connection) as queries:
        client.get("/api/v1/transactions")
    assert not any("invoices_invoice" in q["sql"] for q in queries.captured_queries)
