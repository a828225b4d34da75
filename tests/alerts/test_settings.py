"""The alert settings: ``GET, PUT /api/v1/alerts`` and the console's Alerts
page. Each account sees and changes only its own; bad input is a 400 (a form
error on the page) that names the field, and nothing is saved."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from alerts.models import Alert, AlertSettings
from alerts.selectors import alert_settings_get
from alerts.services import alert_settings_save
from alerts.tasks import alerts_scan
from apikeys.models import KeyKind, LimitReset
from apikeys.services import key_create
from money import usd_to_nanos
from tests.support.alerts import spend
from tests.support.keys import bearer
from tests.support.pages import text, texts

DEFAULTS = {
    "low_balance": {"enabled": True, "threshold": "3.000000000"},
    "key_usage": {"enabled": True, "percent": 80},
}


@pytest.fixture
def api(alice) -> APIClient:
    client = APIClient()
    client.force_login(alice)
    return client


@pytest.fixture
def console(client, alice) -> Client:
    client.force_login(alice)
    return client


def test_an_account_that_never_saved_has_the_defaults(api, alice):
    response = api.get("/api/v1/alerts")
    assert response.status_code == 200
    assert response.json() == DEFAULTS
    # Read, not written: the row is made when first saved.
    assert not AlertSettings.objects.exists()


def test_put_changes_what_it_names_and_keeps_the_rest(api, alice):
    response = api.put(
        "/api/v1/alerts",
        {"low_balance": {"threshold": "12.5"}},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json() == {
        "low_balance": {"enabled": True, "threshold": "12.500000000"},
        "key_usage": {"enabled": True, "percent": 80},
    }
    response = api.put(
        "/api/v1/alerts/",
        {
            "low_balance": {"enabled": False, "threshold": "100000"},
            "key_usage": {"enabled": False, "percent": 95},
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    assert api.get("/api/v1/alerts").json() == {
        "low_balance": {"enabled": False, "threshold": "100000.000000000"},
        "key_usage": {"enabled": False, "percent": 95},
    }
    row = AlertSettings.objects.get(account=alice.account)
    assert row.low_balance_threshold_nanos == usd_to_nanos("100000")


@pytest.mark.parametrize(
    ("body", "where", "message"),
    [
        ({"low_balance": {"threshold": "0"}}, ("low_balance", "threshold"), "$0.01"),
        (
            {"low_balance": {"threshold": "0.009"}},
            ("low_balance", "threshold"),
            "at least $0.01",
        ),
        (
            {"low_balance": {"threshold": "100000.01"}},
            ("low_balance", "threshold"),
            "at most $100,000.00",
        ),
        (
            {"low_balance": {"threshold": "-5"}},
            ("low_balance", "threshold"),
            "negative",
        ),
        (
            {"low_balance": {"threshold": "1e3"}},
            ("low_balance", "threshold"),
            "not a decimal amount",
        ),
        (
            {"low_balance": {"threshold": 2.5}},
            ("low_balance", "threshold"),
            "decimal strings",
        ),
        (
            {"low_balance": {"enabled": "maybe"}},
            ("low_balance", "enabled"),
            "valid boolean",
        ),
        ({"key_usage": {"percent": 0}}, ("key_usage", "percent"), "1"),
        ({"key_usage": {"percent": 101}}, ("key_usage", "percent"), "100"),
        ({"key_usage": {"percent": "most"}}, ("key_usage", "percent"), "integer"),
        ({"key_usage": {"percent": 50.5}}, ("key_usage", "percent"), "integer"),
        ({"key_usage": {"percnt": 50}}, ("key_usage", "percnt"), "Unknown field"),
        ({"low_balance": "on"}, ("low_balance", "non_field_errors"), "dictionary"),
        ({"email": "x@example.com"}, ("email",), "Unknown field"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, alice, body, where, message):
    response = api.put("/api/v1/alerts", body, format="json")
    assert response.status_code == 400, response.content
    errors = response.json()
    for name in where:
        errors = errors[name]
    assert message in " ".join(errors), response.json()
    assert api.get("/api/v1/alerts").json() == DEFAULTS


def test_a_body_that_is_not_json_is_a_400(api):
    response = api.put("/api/v1/alerts", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


def test_each_account_reads_and_changes_only_its_own(api, alice, bob):
    bobs = APIClient()
    bobs.force_login(bob)
    assert (
        bobs.put(
            "/api/v1/alerts",
            {"low_balance": {"threshold": "40"}, "key_usage": {"percent": 10}},
            format="json",
        ).status_code
        == 200
    )
    assert api.get("/api/v1/alerts").json() == DEFAULTS
    assert bobs.get("/api/v1/alerts").json()["key_usage"]["percent"] == 10
    # A management key reads its own account's, whatever it sends.
    key = key_create(account=alice.account, name="ops", kind=KeyKind.MANAGEMENT)
    assert bearer(key.secret).get("/api/v1/alerts").json() == DEFAULTS
    assert alert_settings_get(account=alice.account).low_balance_threshold_nanos == (
        usd_to_nanos("3")
    )


def test_no_credential_is_a_401(client, alice):
    response = APIClient().get("/api/v1/alerts")
    assert response.status_code == 401
    assert APIClient().put("/api/v1/alerts", {}, format="json").status_code == 401


# --- the console page ---------------------------------------------------------


def test_the_page_shows_the_defaults_and_the_nav_links_to_it(console, alice):
    page = console.get("/console/pay-as-you-go")
    assert 'href="/console/alerts"' in page.content.decode()
    page = console.get("/console/alerts")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'aria-current="page"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert 'value="3"' in html and 'value="80"' in html
    assert "Your balance now: $50.00" in text(page, "alerts-form")
    assert texts(page, "alerts-sent") == [
        "Time (UTC) Alert What happened No alerts sent yet."
    ]


def test_saving_the_form_changes_the_settings(console, alice):
    response = console.post(
        "/console/alerts",
        {
            "low_balance_enabled": "on",
            "low_balance_threshold": "$1,000.50",
            "key_usage_percent": "75%",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/console/alerts"
    row = alert_settings_get(account=alice.account)
    assert (
        row.low_balance_enabled,
        row.low_balance_threshold_nanos,
        row.key_usage_enabled,
        row.key_usage_percent,
    ) == (True, usd_to_nanos("1000.5"), False, 75)
    page = console.get("/console/alerts")
    assert "Alert settings saved." in page.content.decode()
    assert 'value="1000.5"' in page.content.decode()
    # $50 is below $1,000.50: the page says so, and when the next alert comes.
    assert "below $1,000.50 already" in text(page, "below-threshold")


def test_turned_off_an_empty_threshold_keeps_the_old_one(console, alice):
    response = console.post(
        "/console/alerts",
        {
            "low_balance_threshold": "",
            "key_usage_enabled": "on",
            "key_usage_percent": "80",
        },
    )
    assert response.status_code == 302
    row = alert_settings_get(account=alice.account)
    assert row.low_balance_enabled is False
    assert row.low_balance_threshold_nanos == usd_to_nanos("3")


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"low_balance_threshold": "0"}, "low_balance_threshold", "from $0.01"),
        (
            {"low_balance_threshold": "250000"},
            "low_balance_threshold",
            "to $100,000.00",
        ),
        ({"low_balance_threshold": "1,5"}, "low_balance_threshold", "not a decimal"),
        ({"low_balance_threshold": "-3"}, "low_balance_threshold", "negative"),
        (
            {"low_balance_enabled": "on", "low_balance_threshold": ""},
            "low_balance_threshold",
            "Enter the balance",
        ),
        ({"key_usage_percent": "0"}, "key_usage_percent", "from 1 to 100"),
        ({"key_usage_percent": "101"}, "key_usage_percent", "from 1 to 100"),
        ({"key_usage_percent": "80.5"}, "key_usage_percent", "whole percent"),
        ({"key_usage_percent": "\u0668\u0660"}, "key_usage_percent", "whole percent"),
        (
            {"key_usage_enabled": "on", "key_usage_percent": " "},
            "key_usage_percent",
            "Enter a percent",
        ),
    ],
)
def test_bad_input_on_the_page_is_a_form_error(console, alice, data, field, message):
    response = console.post("/console/alerts", data)
    assert response.status_code == 200
    assert message in response.context["form"].errors[field][0]
    assert message in response.content.decode().replace("&#x27;", "'")
    assert 'aria-invalid="true"' in response.content.decode()
    assert not AlertSettings.objects.exists()


def test_a_post_without_the_csrf_token_is_refused(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post("/console/alerts", {"low_balance_threshold": "9"})
    assert response.status_code == 403
    assert not AlertSettings.objects.exists()


def test_signed_out_visitors_are_sent_to_log_in(client):
    response = client.get("/console/alerts")
    assert response.status_code == 302
    assert response["Location"].startswith("/login")


def test_the_page_lists_limited_keys_and_the_alerts_sent(console, alice):
    key = key_create(
        account=alice.account,
        name="nightly-batch",
        limit_nanos=usd_to_nanos("10"),
        limit_reset=LimitReset.DAILY,
    ).api_key
    key_create(account=alice.account, name="no-limit")
    alerts_scan()
    spend(alice.account, "8.5", key=key)
    spend(alice.account, "40")  # $1.50
    assert alerts_scan() == 2
    page = console.get("/console/alerts")
    assert texts(page, "alerts-keys")[0].endswith(
        "nightly-batch $8.50 $10.00 daily 85%"
    )
    assert "no-limit" not in text(page, "alerts-keys")
    sent = text(page, "alerts-sent")
    assert "Low balance Balance $1.50 fell below $3.00" in sent
    assert (
        "Key usage “nightly-batch” used $8.50 of its $10.00 limit (80% alert)" in sent
    )


def test_operators_see_the_alerts_sent_and_the_settings(client, ops, alice):
    alerts_scan()
    spend(alice.account, "48")
    alerts_scan()
    alert_settings_save(account=alice.account, key_usage_percent=60)
    client.force_login(ops)
    alerts = client.get("/admin/alerts/alert/", {"q": "alice"})
    assert alerts.status_code == 200
    assert "$2.00" in alerts.content.decode()
    settings = client.get("/admin/alerts/alertsettings/")
    assert settings.status_code == 200
    assert "alice@example.com" in settings.content.decode()
    alert = Alert.objects.get()
    page = client.get(f"/admin/alerts/alert/{alert.pk}/change/")
    assert page.status_code == 200
    assert "$2.000000000" in page.content.decode()
