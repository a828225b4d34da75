"""Every form is protected by Django's CSRF check; nothing is exempt."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from tests.support.world import PASSWORD


@pytest.fixture
def strict_client():
    return Client(enforce_csrf_checks=True)


def csrf_token(client, path) -> str:
    client.get(path)
    return client.cookies["csrftoken"].value


def test_login_without_a_token_is_forbidden(strict_client, alice):
    response = strict_client.post(
        "/login", {"username": "alice@example.com", "password": PASSWORD}
    )

    assert response.status_code == 403
    assert "_auth_user_id" not in strict_client.session


def test_login_with_the_token_works(strict_client, alice):
    token = csrf_token(strict_client, "/login")

    response = strict_client.post(
        "/login",
        {
            "username": "alice@example.com",
            "password": PASSWORD,
            "csrfmiddlewaretoken": token,
        },
    )

    assert response.status_code == 302


@pytest.mark.django_db
def test_signup_without_a_token_is_forbidden(strict_client):
    response = strict_client.post(
        "/signup",
        {
            "email": "mallory@example.com",
            "full_name": "Mallory",
            "password1": "violet-harbour-lantern-42",
            "password2": "violet-harbour-lantern-42",
        },
    )

    assert response.status_code == 403
    assert not get_user_model().objects.filter(email="mallory@example.com").exists()


def test_logout_without_a_token_is_forbidden(strict_client, alice):
    strict_client.force_login(alice)

    response = strict_client.post("/logout")

    assert response.status_code == 403
    assert "_auth_user_id" in strict_client.session


def test_password_reset_without_a_token_is_forbidden(strict_client, alice):
    response = strict_client.post("/password-reset", {"email": "alice@example.com"})

    assert response.status_code == 403
    assert mail.outbox == []
