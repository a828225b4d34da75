"""Careless or hostile input to the console's key forms and the sign-up form:
a form error on the field, nothing written."""

from __future__ import annotations

import pytest

from accounts.models import User
from apikeys.models import ApiKey
from apikeys.services import key_create


@pytest.fixture
def console(client, alice):
    client.force_login(alice)
    return client


@pytest.mark.parametrize("char", ["\u202e", "\u2066", "\u200f", "\x00", "\ufeff"])
def test_a_key_name_with_a_hidden_character_is_a_form_error(console, char):
    response = console.post("/console/keys/new", {"name": f"prod{char}"})
    assert response.status_code == 200
    assert "name" in response.context["form"].errors
    assert f"U+{ord(char):04X}" in response.context["form"].errors["name"][0]
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("1e3", "not a decimal amount"),
        ("\u0661\u0662", "not a decimal amount"),
        ("1,5", "not a decimal amount"),  # not read as 15
        ("12,34", "not a decimal amount"),
        ("-5", "is negative"),
        ("0", "above zero"),
    ],
)
def test_a_key_limit_that_is_not_an_ascii_decimal_is_a_form_error(
    console, alice, limit, message
):
    key = key_create(account=alice.account, name="k").api_key
    response = console.post(
        f"/console/keys/{key.pk}/edit",
        {"name": "k", "limit": limit, "limit_reset": "none"},
    )
    assert response.status_code == 200
    assert message in response.context["form"].errors["limit"][0]
    key.refresh_from_db()
    assert key.limit_nanos is None


def test_a_key_limit_may_group_thousands(console, alice):
    key = key_create(account=alice.account, name="k").api_key
    response = console.post(
        f"/console/keys/{key.pk}/edit",
        {"name": "k", "limit": "$12,345.5", "limit_reset": "none"},
    )
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.limit_nanos == 12_345_500_000_000


def test_a_full_name_with_a_bidi_override_is_a_signup_form_error(client, db):
    response = client.post(
        "/signup",
        {
            "email": "mallory@example.com",
            "full_name": "Mallory \u202eyrollaM",
            "password1": "violet-harbour-lantern-42",
            "password2": "violet-harbour-lantern-42",
        },
    )
    assert response.status_code == 200
    assert (
        "U+202E RIGHT-TO-LEFT OVERRIDE"
        in response.context["form"].errors["full_name"][0]
    )
    assert not User.objects.filter(email="mallory@example.com").exists()
