from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from accounts import forms
from accounts.models import Account
from billing.models import Wallet
from tests.support import pages

User = get_user_model()


def signup(client, **overrides):
    data = {
        "email": "carol@example.com",
        "full_name": "Carol Jones",
        "password1": "violet-harbour-lantern-42",
        "password2": "violet-harbour-lantern-42",
        **overrides,
    }
    return client.post("/signup", data)


@pytest.mark.django_db
def test_signup_page_has_every_field(client):
    response = client.get("/signup")

    assert response.status_code == 200
    for name in ("email", "full_name", "password1", "password2"):
        assert f'name="{name}"' in response.content.decode()


@pytest.mark.django_db
def test_signup_creates_user_account_and_empty_wallet_and_signs_in(client):
    response = signup(client, email="Carol@Example.com")

    assert response.status_code == 302
    assert response["Location"] == "/console/pay-as-you-go"
    user = User.objects.get(email="carol@example.com")
    assert user.full_name == "Carol Jones"
    assert user.check_password("violet-harbour-lantern-42")
    account = Account.objects.get(owner=user)
    wallet = Wallet.objects.get(account=account)
    assert (wallet.topup_nanos, wallet.bonus_nanos, wallet.held_nanos) == (0, 0, 0)
    # Signed in: the console answers, with the new, empty balance.
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert pages.amount(page, "balance-total") == "$0.00"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("password1", "password2", "message"),
    [
        ("violet-harbour-lantern-42", "violet-harbour-lantern-43", "do not match"),
        ("short1", "short1", "too short"),
        ("password123", "password123", "too common"),
        ("83920174651", "83920174651", "entirely numeric"),
        ("carol@example.com", "carol@example.com", "too similar"),
    ],
)
def test_signup_applies_the_password_validators(client, password1, password2, message):
    response = signup(client, password1=password1, password2=password2)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not User.objects.exists()
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_signup_refuses_an_email_already_taken_in_any_case(client, bob):
    response = signup(client, email="BOB@example.com")

    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert User.objects.filter(email__iexact="bob@example.com").count() == 1


@pytest.mark.django_db
def test_signup_requires_email_and_name(client):
    response = signup(client, email="not-an-email", full_name="")

    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) == {"email", "full_name"}
    assert not User.objects.exists()


@pytest.mark.django_db
def test_a_signup_racing_another_for_the_same_email_gets_a_form_error(
    client, monkeypatch
):
    # Both passed the form's check; the database's unique email decides.
    monkeypatch.setattr(forms.SignupForm, "clean_email", lambda self: "dup@example.com")
    assert signup(client, email="dup@example.com").status_code == 302
    client.post("/logout")

    response = signup(client, email="dup@example.com")

    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert User.objects.filter(email="dup@example.com").count() == 1
