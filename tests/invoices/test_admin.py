"""Operators list invoices read-only and open their PDFs from admin."""

from __future__ import annotations

from tests.support.invoices import issue


def test_ops_list_invoices_with_a_link_to_the_pdf(client, ops, alice, alice_profile):
    invoice = issue(alice.account, "100")
    client.force_login(ops)
    response = client.get("/admin/invoices/invoice/")
    assert response.status_code == 200
    html = response.content.decode()
    for shown in (invoice.number, "alice@example.com", "$100.00"):
        assert shown in html
    pdf_url = f"/admin/invoices/invoice/{invoice.pk}/pdf/"
    assert pdf_url in html

    response = client.get(pdf_url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content).startswith(b"%PDF-")


def test_invoices_are_read_only_in_admin(client, ops, alice):
    invoice = issue(alice.account, "100")
    client.force_login(ops)
    assert client.get("/admin/invoices/invoice/add/").status_code == 403
    page = client.get(f"/admin/invoices/invoice/{invoice.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert invoice.number.encode() in page.content
    assert b"Bonus credits: $20.00 (20%)" in page.content
    delete = client.post(
        f"/admin/invoices/invoice/{invoice.pk}/delete/", {"post": "yes"}
    )
    assert delete.status_code == 403


def test_customers_cannot_open_the_admin_pdf(client, alice, bob):
    invoice = issue(alice.account, "100")
    client.force_login(bob)
    response = client.get(f"/admin/invoices/invoice/{invoice.pk}/pdf/")
    assert response.status_code == 302  # to the admin's login
