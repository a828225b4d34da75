"""The console's API Keys pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.test import Client

from apikeys.models import ApiKey, KeyKind, KeyStatus, LimitReset
from apikeys.secrets import MANAGEMENT_PREFIX, PAYG_PREFIX, key_is_well_formed
from tests.support.keys import make_key, make_log
from tests.support.pages import text, texts


@pytest.fixture
def console(client, alice):
    client.force_login(alice)
    return client


def test_the_nav_links_to_the_keys_page(console):
    page = console.get("/console/pay-as-you-go")
    assert 'href="/console/keys"' in page.content.decode()
    keys = console.get("/console/keys")
    assert keys.status_code == 200
    assert "Pay As You Go API Keys" in keys.content.decode()
    assert 'aria-current="page"' in keys.content.decode()


def test_signed_out_visitors_are_sent_to_log_in(client, alice):
    key = make_key(alice).api_key
    for url in ("/console/keys", f"/console/keys/{key.pk}", "/console/keys/new"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login")


def test_create_shows_the_key_once(console):
    form = console.get("/console/keys/new")
    assert form.status_code == 200
    response = console.post("/console/keys/new", {"name": "production-app"})

    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"]
    secret = text(response, "new-key")
    assert key_is_well_formed(secret, PAYG_PREFIX)
    box = text(response, "new-key-box")
    assert "won’t be shown again" in box
    assert f'data-copy="{secret}"' in response.content.decode()
    key = ApiKey.objects.get(name="production-app")
    assert texts(response, "key-prefix") == [key.prefix]

    later = console.get("/console/keys").content.decode()
    assert secret not in later
    assert secret[9:-6] not in later
    assert key.prefix in later
    assert secret not in console.get(f"/console/keys/{key.pk}").content.decode()


def test_create_refuses_an_empty_or_long_name(console):
    for name in ("", "   ", "x" * 101):
        response = console.post("/console/keys/new", {"name": name})
        assert response.status_code == 200
        assert response.context["form"].errors["name"]
    assert ApiKey.objects.count() == 0


def test_create_a_management_key(console):
    response = console.post(
        "/console/keys/new", {"name": "billing-sync", "kind": "management"}
    )
    assert response.status_code == 201
    assert key_is_well_formed(text(response, "new-key"), MANAGEMENT_PREFIX)
    assert ApiKey.objects.get(name="billing-sync").kind == KeyKind.MANAGEMENT
    assert "billing-sync" in text(response, "management-keys-table")
    assert text(response, "keys-table").startswith("Name")  # no PAYG rows
    assert "billing-sync" not in text(response, "keys-table")


def test_list_shows_the_columns_of_each_key(console, alice):
    key = make_key(alice, name="prod").api_key
    ApiKey.objects.filter(pk=key.pk).update(
        used_nanos=3_000_000, last_used_at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    )
    page = console.get("/console/keys")
    row = text(page, "key-row")
    assert "prod" in row
    assert key.prefix in row
    assert "Enabled" in row
    assert text(page, "key-used") == "$0.0030"
    assert text(page, "key-last-used") == "Mar 1, 2026 09:30 UTC"
    for action in ("Details", "Edit", "Delete"):
        assert action in row


def test_status_toggles_with_a_post(console, alice):
    key = make_key(alice).api_key
    assert console.get(f"/console/keys/{key.pk}/status").status_code == 405

    response = console.post(f"/console/keys/{key.pk}/status", {"status": "disabled"})
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.status == KeyStatus.DISABLED
    assert "Disabled" in text(console.get("/console/keys"), "key-status")

    console.post(
        f"/console/keys/{key.pk}/status", {"status": "enabled", "next": "detail"}
    )
    key.refresh_from_db()
    assert key.status == KeyStatus.ENABLED


def test_edit_renames_and_sets_a_credit_limit(console, alice):
    key = make_key(alice, name="old").api_key
    page = console.get(f"/console/keys/{key.pk}/edit")
    assert page.status_code == 200
    response = console.post(
        f"/console/keys/{key.pk}/edit",
        {"name": "new", "limit": "$1,000.50", "limit_reset": "weekly"},
    )
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.name == "new"
    assert key.limit_nanos == 1_000_500_000_000
    assert key.limit_reset == LimitReset.WEEKLY
    assert "Limit $1,000.50 weekly" in text(console.get("/console/keys"), "key-row")
    assert console.get(f"/console/keys/{key.pk}/edit").context["form"].initial[
        "limit"
    ] == ("1000.5")

    console.post(
        f"/console/keys/{key.pk}/edit",
        {"name": "new", "limit": "", "limit_reset": "none"},
    )
    key.refresh_from_db()
    assert key.limit_nanos is None


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "", "limit": "", "limit_reset": "none"}, "name"),
        ({"name": "k", "limit": "-5", "limit_reset": "none"}, "limit"),
        ({"name": "k", "limit": "five", "limit_reset": "none"}, "limit"),
        ({"name": "k", "limit": "5", "limit_reset": "hourly"}, "limit_reset"),
    ],
)
def test_edit_refuses_bad_input(console, alice, data, field):
    key = make_key(alice, name="keep").api_key
    response = console.post(f"/console/keys/{key.pk}/edit", data)
    assert response.status_code == 200
    assert response.context["form"].errors[field]
    key.refresh_from_db()
    assert (key.name, key.limit_nanos) == ("keep", None)


def test_a_management_key_has_no_limit_fields(console, alice):
    key = make_key(alice, kind=KeyKind.MANAGEMENT).api_key
    form = console.get(f"/console/keys/{key.pk}/edit").context["form"]
    assert list(form.fields) == ["name"]
    console.post(f"/console/keys/{key.pk}/edit", {"name": "renamed", "limit": "5"})
    key.refresh_from_db()
    assert (key.name, key.limit_nanos) == ("renamed", None)


def test_delete_asks_for_confirmation_first(console, alice):
    key = make_key(alice, name="doomed").api_key
    confirm = console.get(f"/console/keys/{key.pk}/delete")
    assert confirm.status_code == 200
    assert "doomed" in text(confirm, "confirm-delete")
    key.refresh_from_db()
    assert key.deleted_at is None

    response = console.post(f"/console/keys/{key.pk}/delete")
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.deleted_at is not None
    assert "doomed" not in text(console.get("/console/keys"), "keys-table")
    assert console.get(f"/console/keys/{key.pk}").status_code == 404


def test_another_accounts_key_is_404_on_every_page(console, bob):
    key = make_key(bob, name="bob's").api_key
    for url in ("", "/edit", "/delete"):
        assert console.get(f"/console/keys/{key.pk}{url}").status_code == 404
    for url, data in (
        ("/edit", {"name": "mine", "limit_reset": "none"}),
        ("/delete", {}),
        ("/status", {"status": "disabled"}),
    ):
        assert console.post(f"/console/keys/{key.pk}{url}", data).status_code == 404
    key.refresh_from_db()
    assert (key.name, key.status, key.deleted_at) == ("bob's", "enabled", None)
    assert "bob's" not in console.get("/console/keys").content.decode()


def test_forms_need_the_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    key = make_key(alice).api_key
    assert client.post("/console/keys/new", {"name": "k"}).status_code == 403
    for url in ("edit", "delete", "status"):
        response = client.post(f"/console/keys/{key.pk}/{url}", {"name": "x"})
        assert response.status_code == 403
    page = client.get("/console/keys").content.decode()
    assert page.count("csrfmiddlewaretoken") >= 3  # logout, toggle, management


def test_details_show_the_keys_facts_and_its_latest_requests(console, alice):
    key = make_key(alice, name="prod", limit_nanos=5_000_000_000, limit_reset="daily")
    other = make_key(alice, name="other")
    make_log(key, at=datetime(2026, 3, 1, 12, tzinfo=UTC))
    redirected = make_log(key, at=datetime(2026, 3, 2, 12, tzinfo=UTC), status=302)
    failed = make_log(
        key,
        at=datetime(2026, 3, 3, 12, tzinfo=UTC),
        status=502,
        error="upstream timeout",
    )
    make_log(other, at=datetime(2026, 3, 2, 12, tzinfo=UTC))
    url = f"/console/keys/{key.api_key.pk}"

    page = console.get(url)
    assert page.status_code == 200
    assert text(page, "key-name") == "prod"
    assert text(page, "key-limit") == "$5.00 daily"
    rows = texts(page, "log-row")
    assert len(rows) == 3
    assert "upstream timeout" in rows[0]
    assert "Mar 3, 2026" in rows[0]
    html = page.content.decode()
    # Each row opens its request; ok is below 400, as everywhere else.
    assert f'href="/console/logs/{failed.id}"' in html
    badges = re.findall(r'class="badge badge--(ok|error)">(\d+)<', html)
    assert badges == [("error", "502"), ("ok", "302"), ("ok", "200")]
    assert redirected.status == 302
    assert f'href="/console/logs?key={key.api_key.pk}"' in html


def test_details_show_the_latest_10_and_link_to_all_of_them(console, alice):
    key = make_key(alice)
    logs = [
        make_log(key, at=datetime(2026, 3, 1, 12, minute, tzinfo=UTC))
        for minute in range(30)
    ]
    page = console.get(f"/console/keys/{key.api_key.pk}")
    ids = re.findall(
        r'data-testid="log-row" data-id="([0-9a-f-]{36})"', page.content.decode()
    )
    assert ids == [str(log.id) for log in reversed(logs[-10:])]
    assert text(page, "key-logs-link") == "All logs of this key"
    assert "page=" not in page.content.decode()


def test_staff_have_an_account_and_their_keys_page_too(client, ops):
    client.force_login(ops)
    assert client.get("/console/keys").status_code == 200
