"""Hostile and careless input to /api/v1: a clear 4xx naming the field, JSON
always, never a 5xx."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apikeys.models import ApiKey, KeyKind, KeyStatus
from apikeys.services import key_create, key_disable_by_operator
from billing import api as billing_api
from billing.models import AutoTopUp, TopUp
from money import fields as money_fields

BIDI = "\u202e"  # RIGHT-TO-LEFT OVERRIDE


@pytest.fixture
def api(alice) -> APIClient:
    """alice, calling with a management key, as an integrator would."""
    secret = key_create(
        account=alice.account, name="ops", kind=KeyKind.MANAGEMENT
    ).secret
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def refused(response, field: str) -> str:
    """The answer is a 400 naming ``field``; its message."""
    assert response.status_code == 400, (response.status_code, response.content)
    body = response.json()
    assert field in body, body
    return " ".join(body[field])


# --- query parameters -------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"model": "\x00"}, "model"),
        ({"model": "openai/gpt-5\u202e"}, "model"),
        ({"model": "m" * 101}, "model"),
        ({"key": "\u00b2"}, "key"),  # "²".isdigit() is true; int() refuses it
        ({"key": "\u0661\u0662"}, "key"),
        ({"key": "9" * 30}, "key"),
        ({"key": "0"}, "key"),
        ({"from": "\x00"}, "from"),
        ({"to": "2026-13-45"}, "to"),
    ],
)
def test_bad_request_log_filters_are_400_naming_them(api, query, field):
    refused(api.get("/api/v1/requests", query), field)


@pytest.mark.parametrize(
    "path", ["/api/v1/keys", "/api/v1/transactions", "/api/v1/requests"]
)
def test_a_huge_limit_is_clamped_to_a_page_of_at_most_1000(api, path):
    response = api.get(path, {"limit": "999999999999999999999"})
    assert response.status_code == 200
    assert set(response.json()) == {"count", "next", "previous", "results"}


@pytest.mark.parametrize("path", ["/api/v1/keys", "/api/v1/transactions"])
def test_a_huge_offset_is_an_empty_page(api, path):
    response = api.get(path, {"offset": "999999999999999999999", "limit": "5"})
    assert response.status_code == 200
    assert response.json()["results"] == []


def test_a_larger_limit_is_clamped_to_the_largest_page(api, alice, monkeypatch):
    from agipower.api_pagination import Pagination

    assert Pagination.max_limit == 1000
    monkeypatch.setattr(Pagination, "max_limit", 2)
    for n in range(3):
        key_create(account=alice.account, name=f"k{n}")
    body = api.get("/api/v1/keys", {"limit": "999999999999999999999"}).json()
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert "limit=2" in body["next"]


# --- bodies -------------------------------------------------------------------


@pytest.mark.parametrize("body", [[None], [], "null", 5, {"default": False}, {}])
def test_a_card_update_that_is_not_default_true_is_400(api, body):
    response = api.patch("/api/v1/payment-methods/pm_123", body, format="json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"


def test_a_body_that_is_not_an_object_is_400_everywhere(api):
    for method, path in [
        ("post", "/api/v1/keys"),
        ("put", "/api/v1/auto-top-up"),
        ("put", "/api/v1/billing-profile"),
        ("post", "/api/v1/top-ups"),
    ]:
        response = getattr(api, method)(path, [None], format="json")
        assert response.status_code == 400, (path, response.content)


# --- amounts ------------------------------------------------------------------

NOT_AMOUNTS = [
    "1e3",  # was taken as $1,000
    "\u0661\u0662",  # Arabic-Indic digits, was taken as 12
    "\uff11\uff12",  # full-width digits
    "1,5",
    "+5",
    ".5",
    "NaN",
    "Infinity",
    "5\x00",
    "0x10",
    "-5",
    "99999999999999999999999",
    5.5,
    True,
    [5],
    {"usd": 5},
]


@pytest.mark.parametrize("amount", NOT_AMOUNTS)
def test_a_key_limit_that_is_not_an_ascii_decimal_is_400(api, alice, amount):
    response = api.post(
        "/api/v1/keys", {"name": "capped", "limit": amount}, format="json"
    )
    refused(response, "limit")
    assert not ApiKey.objects.filter(name="capped").exists()


@pytest.mark.parametrize("amount", NOT_AMOUNTS)
@pytest.mark.parametrize("field", ["threshold", "amount"])
def test_auto_top_up_amounts_that_are_not_ascii_decimals_are_400(api, field, amount):
    body = {"enabled": False, "threshold": "10", "amount": "50", field: amount}
    refused(api.put("/api/v1/auto-top-up", body, format="json"), field)
    assert not AutoTopUp.objects.filter(enabled=True).exists()


@pytest.mark.parametrize("amount", ["1e3", "\u0661\u0662", "100.0000000001"])
def test_a_top_up_amount_that_is_not_an_ascii_decimal_is_400(api, amount):
    refused(api.post("/api/v1/top-ups", {"amount": amount}, format="json"), "amount")
    assert not TopUp.objects.exists()


def test_the_amount_grammar_is_in_the_schema():
    field = money_fields.UsdAmountField()
    assert field.to_internal_value("12.50") == 12_500_000_000
    assert field.to_internal_value(7) == 7_000_000_000
    schema = APIClient().get("/api/schema/?format=json").json()
    limit = schema["components"]["schemas"]["KeyCreate"]["properties"]["limit"]
    assert limit["pattern"] == money_fields.AMOUNT_PATTERN


# --- text ---------------------------------------------------------------------

HIDDEN = [
    "\u202e",  # RIGHT-TO-LEFT OVERRIDE
    "\u202a",  # LEFT-TO-RIGHT EMBEDDING
    "\u2066",  # LEFT-TO-RIGHT ISOLATE
    "\u2069",  # POP DIRECTIONAL ISOLATE
    "\u200e",  # LEFT-TO-RIGHT MARK
    "\u200f",  # RIGHT-TO-LEFT MARK
    "\ufeff",  # ZERO WIDTH NO-BREAK SPACE
    "\u200b",  # ZERO WIDTH SPACE
    "\x00",
    "\x1b",
    "\n",
    "\t",
    "\u2028",  # LINE SEPARATOR
]


@pytest.mark.parametrize("char", HIDDEN)
def test_a_key_name_with_a_hidden_character_is_400(api, alice, char):
    message = refused(
        api.post("/api/v1/keys", {"name": f"prod{char}app"}, format="json"), "name"
    )
    assert f"U+{ord(char):04X}" in message
    key = key_create(account=alice.account, name="plain")
    refused(
        api.patch(
            f"/api/v1/keys/{key.api_key.pk}", {"name": f"x{char}y"}, format="json"
        ),
        "name",
    )
    key.api_key.refresh_from_db()
    assert key.api_key.name == "plain"


@pytest.mark.parametrize(
    "name",
    [
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian, with a ZWNJ
        "\U0001f469\u200d\U0001f4bb laptop",  # an emoji joined by a ZWJ
        "\u05e9\u05dc\u05d5\u05dd app",  # Hebrew, right to left by itself
    ],
)
def test_names_in_any_script_are_kept(api, name):
    response = api.post("/api/v1/keys", {"name": name}, format="json")
    assert response.status_code == 201
    assert response.json()["name"] == name


PROFILE = {
    "name": "Alice Example",
    "country": "US",
    "address_line1": "1 Main Street",
    "address_line2": "",
    "city": "Springfield",
    "state": "",
    "postal_code": "12345",
    "tax_id": "",
}


@pytest.mark.parametrize("field", sorted(set(PROFILE) - {"country"}))
def test_a_billing_profile_field_with_a_bidi_override_is_400(api, alice, field):
    body = {**PROFILE, field: f"abc{BIDI}def"}
    message = refused(api.put("/api/v1/billing-profile", body, format="json"), field)
    assert "U+202E RIGHT-TO-LEFT OVERRIDE" in message
    assert api.get("/api/v1/billing-profile").status_code == 404


def test_a_clean_billing_profile_is_saved(api):
    response = api.put("/api/v1/billing-profile", PROFILE, format="json")
    assert response.status_code == 200
    assert response.json() == PROFILE


# --- errors are JSON ------------------------------------------------------------


def test_an_unknown_api_path_is_a_json_404(api):
    for path in ("/api/v1/nothing-here", "/api/v2/balance", "/api/"):
        response = api.get(path)
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert "detail" in response.json()


def test_an_unhandled_error_under_api_is_a_json_500(alice, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(billing_api, "balance_get", broken)
    client = APIClient(raise_request_exception=False)
    client.force_login(alice)
    response = client.get("/api/v1/balance")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Internal server error. It has been logged."}
    assert "a bug" in caplog.text  # Django logged it, with its traceback


def test_console_pages_keep_their_html_errors(client, alice):
    client.force_login(alice)
    response = client.get("/console/no-such-page")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


# --- the console ------------------------------------------------------------------


def test_enabling_a_key_support_disabled_says_why_and_it_stays_disabled(
    client, alice, ops
):
    key = key_create(account=alice.account, name="leaky").api_key
    key_disable_by_operator(api_key=key, operator=ops, reason="leaked on GitHub")
    client.force_login(alice)

    response = client.post(
        f"/console/keys/{key.pk}/status", {"status": "enabled"}, follow=True
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "was disabled by support (leaked on GitHub)" in page
    assert "Contact support" in page
    key.refresh_from_db()
    assert key.status == KeyStatus.DISABLED
