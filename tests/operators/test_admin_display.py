"""Admin as AGIPower's operators see it: its titles, amounts as dollars
("$25.00" in lists and messages, every nano on a row's own page), "Grant
credits" on an account's page, and accounts named after their owners."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission

from accounts.models import Account, User
from accounts.services import user_signup
from apikeys.models import ApiKey
from apikeys.services import key_create
from tests.support.world import PASSWORD, grant


def _title(html: str) -> str:
    return re.search(r"<title>(.*?)</title>", html, re.S).group(1).strip()


# --- Titles ----------------------------------------------------------------------


def test_admin_is_titled_for_agipower_operators(client, ops):
    login = client.get("/admin/login/").content.decode()
    assert "AGIPower operations" in login
    assert "Django administration" not in login
    assert "Django site admin" not in _title(login)

    client.force_login(ops)
    index = client.get("/admin/").content.decode()

    assert _title(index) == "Operations | AGIPower operations"
    assert '<a href="/admin/">AGIPower operations</a>' in index
    assert "Django" not in _title(index)
    assert "Django administration" not in index


# --- Amounts ---------------------------------------------------------------------


def test_lists_show_two_places_and_a_row_shows_every_nano(client, ops, bob):
    entry = grant(bob, "1234.567891234")
    client.force_login(ops)

    ledger = client.get("/admin/billing/ledgerentry/").content.decode()
    lots = client.get("/admin/billing/creditlot/").content.decode()
    detail = client.get(f"/admin/billing/ledgerentry/{entry.pk}/change/")

    assert "$1,234.57" in ledger
    assert "1234.567891234" not in ledger and "$1,234.567891234" not in ledger
    assert "$1,234.57" in lots
    assert detail.status_code == 200
    page = detail.content.decode()
    # The amount, its bonus delta and the bonus balance after it, to the nano;
    # and the top-up ones as dollars, not as raw counts.
    assert page.count('<div class="readonly">$1,234.567891234</div>') == 3
    assert page.count('<div class="readonly">$0.000000000</div>') == 2
    assert "1234567891234" not in page
    assert "<title>gift $1,234.567891234 (" in page
    assert ">Amount:<" in page


def test_account_list_shows_the_balance_in_dollars(client, ops, alice):
    grant(alice, "1200.006")  # $1,250.006 in all
    client.force_login(ops)

    page = client.get("/admin/accounts/account/").content.decode()

    assert "$1,250.01" in page
    assert "$1,250.006000000" not in page


def test_api_key_list_and_page(client, ops, alice):
    key = key_create(account=alice.account, name="prod").api_key
    ApiKey.objects.filter(pk=key.pk).update(used_nanos=25_000_000_000)
    client.force_login(ops)

    listing = client.get("/admin/apikeys/apikey/").content.decode()
    detail = client.get(f"/admin/apikeys/apikey/{key.pk}/change/").content.decode()

    assert "$25.00" in listing
    assert "$25.000000000" not in listing
    assert "$25.000000000" in detail


def test_the_grant_message_shows_dollars_with_two_places(client, ops, bob):
    client.force_login(ops)
    url = f"/admin/accounts/account/{bob.account.pk}/grant/"
    key = client.get(url).context["form"].initial["idempotency_key"]

    response = client.post(
        url,
        {
            "idempotency_key": key,
            "source": "compensation",
            "pool": "bonus",
            "amount": "25",
            "reason": "outage",
        },
        follow=True,
    )

    messages = [str(m) for m in response.context["messages"]]
    assert len(messages) == 1
    assert messages[0].startswith("Compensation of $25.00 recorded for bob@example.com")
    assert "$25.000000000" not in messages[0]


# --- Grant credits on the account's own page -------------------------------------


def test_the_account_page_links_to_grant_credits(client, ops, bob):
    client.force_login(ops)

    page = client.get(f"/admin/accounts/account/{bob.account.pk}/change/")

    assert page.status_code == 200
    grant_url = f"/admin/accounts/account/{bob.account.pk}/grant/"
    assert f'href="{grant_url}" data-testid="grant-credits">Grant credits</a>' in (
        page.content.decode()
    )
    assert client.get(grant_url).status_code == 200


def test_staff_who_may_not_grant_see_no_link(client, bob):
    viewer = User.objects.create_user(
        email="viewer@example.com", password=PASSWORD, is_staff=True
    )
    viewer.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="accounts",
            codename__in=["view_account", "change_account"],
        )
    )
    client.force_login(viewer)

    page = client.get(f"/admin/accounts/account/{bob.account.pk}/change/")

    assert page.status_code == 200
    assert "grant-credits" not in page.content.decode()
    grant = client.get(f"/admin/accounts/account/{bob.account.pk}/grant/")
    assert grant.status_code == 403


def test_an_unknown_account_page_is_no_server_error(client, ops):
    client.force_login(ops)

    for pk in ("999999", "abc", "%C2%B2"):
        response = client.get(f"/admin/accounts/account/{pk}/change/")
        assert response.status_code in (302, 404), pk


# --- Account names ---------------------------------------------------------------


@pytest.mark.django_db
def test_an_account_is_named_after_its_owner_when_it_has_no_name():
    named = user_signup(email="carol@example.com", password=PASSWORD, full_name="Carol")
    anonymous = user_signup(email="dave@example.com", password=PASSWORD, full_name="")
    company = user_signup(email="erin@example.com", password=PASSWORD, full_name="Erin")
    Account.objects.filter(pk=company.account.pk).update(name="Erin's Lab")

    assert str(Account.objects.get(pk=named.account.pk)) == "Carol <carol@example.com>"
    assert str(Account.objects.get(pk=anonymous.account.pk)) == "dave@example.com"
    assert str(Account.objects.get(pk=company.account.pk)) == "Erin's Lab"


def test_the_account_list_names_accounts_after_their_owners(client, ops, alice):
    client.force_login(ops)

    page = client.get("/admin/accounts/account/").content.decode()
    found = client.get("/admin/accounts/account/", {"q": "Alice"}).content.decode()

    assert "Alice &lt;alice@example.com&gt;" in page
    assert "Alice &lt;alice@example.com&gt;" in found
