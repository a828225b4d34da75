"""Every user has a billing account and a wallet, however the user was made,
so the REST API answers an operator like any customer: zeros, not a 500."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.models import Account, User
from billing.models import Wallet
from tests.support.world import PASSWORD, grant

ZERO = "0.000000000"


def has_account_and_wallet(email: str) -> bool:
    account = Account.objects.filter(owner__email=email).first()
    return account is not None and Wallet.objects.filter(account=account).exists()


def signed_in(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_createsuperuser_makes_an_account_with_a_wallet():
    call_command("createsuperuser", interactive=False, email="root@example.com")
    assert has_account_and_wallet("root@example.com")


@pytest.mark.django_db
def test_ensure_operator_makes_an_account_with_a_wallet(
    monkeypatch, settings, tmp_path
):
    settings.VAR_DIR = tmp_path
    monkeypatch.setenv("OPERATOR_EMAIL", "ops@localhost")
    call_command("ensure_operator")
    assert has_account_and_wallet("ops@localhost")


@pytest.mark.django_db
def test_create_user_makes_an_account_with_a_wallet():
    User.objects.create_user(email="plain@example.com", password=PASSWORD)
    assert has_account_and_wallet("plain@example.com")


def test_the_admin_add_form_makes_an_account_with_a_wallet(client, ops):
    client.force_login(ops)
    response = client.post(
        "/admin/accounts/user/add/",
        {
            "email": "added@example.com",
            "password1": "violet-harbour-lantern-42",
            "password2": "violet-harbour-lantern-42",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert has_account_and_wallet("added@example.com")


def test_saving_a_user_again_keeps_its_one_account(ops):
    account = ops.account
    ops.full_name = "Operator"
    ops.save()
    assert list(Account.objects.filter(owner=ops)) == [account]


def test_the_migrations_give_users_without_an_account_one_with_a_wallet(db):
    # bulk_create writes around save(), as rows made before this rule were.
    (user,) = User.objects.bulk_create([User(email="old@example.com")])
    assert not Account.objects.filter(owner=user).exists()

    accounts = importlib.import_module(
        "accounts.migrations.0003_account_for_every_user"
    )
    billing = importlib.import_module(
        "billing.migrations.0005_wallet_for_every_account"
    )
    accounts.accounts_for_users_without_one(apps, None)
    billing.wallets_for_accounts_without_one(apps, None)

    assert has_account_and_wallet("old@example.com")
    assert Account.objects.filter(owner=user).count() == 1


@pytest.fixture
def root(db):
    """An operator made the way operators are: ``createsuperuser``."""
    call_command("createsuperuser", interactive=False, email="root@example.com")
    return User.objects.get(email="root@example.com")


def test_an_operator_has_an_empty_balance(root):
    response = signed_in(root).get("/api/v1/balance")
    assert response.status_code == 200
    assert response.json() == {
        "total_credits": ZERO,
        "top_up_credits": ZERO,
        "bonus_credits": ZERO,
        "held_credits": ZERO,
        "currency": "USD",
    }


def test_an_operator_has_an_empty_breakdown(root):
    response = signed_in(root).get("/api/v1/balance/breakdown")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "top_ups",
        "bonuses",
        "gifts",
        "referrals",
        "compensations",
        "adjustments",
        "expired",
        "usage",
        "refunds",
        "total",
    }
    assert set(body.values()) == {ZERO}


def test_an_operator_has_no_transactions(root):
    response = signed_in(root).get("/api/v1/transactions")
    assert response.status_code == 200
    assert response.json() == {
        "count": 0,
        "next": None,
        "previous": None,
        "results": [],
    }


def test_an_operator_has_auto_top_up_off(root):
    response = signed_in(root).get("/api/v1/auto-top-up")
    assert response.status_code == 200
    body = response.json()
    assert (body["enabled"], body["payment_method"]) == (False, "")


def test_an_operator_has_no_saved_cards(root, stripe_settings):
    response = signed_in(root).get("/api/v1/payment-methods")
    assert response.status_code == 200
    assert response.json() == []


def test_an_operator_has_no_billing_profile_until_one_is_saved(root):
    client = signed_in(root)
    missing = client.get("/api/v1/billing-profile")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "No billing profile yet."}

    profile = {
        "name": "Ops Ltd",
        "country": "GB",
        "address_line1": "1 High Street",
        "address_line2": "",
        "city": "London",
        "state": "",
        "postal_code": "N1 1AA",
        "tax_id": "",
    }
    assert client.put("/api/v1/billing-profile", profile, format="json").json() == (
        profile
    )
    assert client.get("/api/v1/billing-profile").json() == profile


def test_an_account_whose_wallet_is_missing_reads_zero_and_opens_it_on_a_credit(
    bob,
):
    Wallet.objects.filter(account=bob.account).delete()
    assert signed_in(bob).get("/api/v1/balance").json()["total_credits"] == ZERO

    grant(bob, 5_000_000_000, reason="welcome")
    assert Wallet.objects.get(account=bob.account).bonus_nanos == 5_000_000_000
