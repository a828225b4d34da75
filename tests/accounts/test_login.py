from __future__ import annotations

import pytest

from tests.support.world import PASSWORD

PAYG = "/console/pay-as-you-go"


def login(client, email, password, **extra):
    return client.post("/login", {"username": email, "password": password}, **extra)


@pytest.mark.django_db
def test_login_page_asks_for_email_and_password(client):
    response = client.get("/login")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'type="email"' in html
    assert 'type="password"' in html


def test_login_with_email_and_password_then_logout(client, alice):
    response = login(client, "alice@example.com", PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == PAYG
    assert client.get(PAYG).status_code == 200

    response = client.post("/logout")

    assert response.status_code == 302
    assert response["Location"] == "/login"
    assert "_auth_user_id" not in client.session
    assert client.get(PAYG).status_code == 302


def test_email_is_matched_without_regard_to_case(client, alice):
    response = login(client, "  ALICE@Example.COM ", PASSWORD)

    assert response.status_code == 302
    assert int(client.session["_auth_user_id"]) == alice.pk


def test_wrong_password_is_refused(client, alice):
    response = login(client, "alice@example.com", "not her password")

    assert response.status_code == 200
    assert "do not match" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_login_follows_a_safe_next_but_not_another_site(client, alice):
    response = client.post(
        "/login?next=/console/",
        {"username": "alice@example.com", "password": PASSWORD, "next": "/console/"},
    )
    assert response["Location"] == "/console/"

    client.post("/logout")
    response = client.post(
        "/login",
        {
            "username": "alice@example.com",
            "password": PASSWORD,
            "next": "https://evil.example/",
        },
    )
    assert response["Location"] == PAYG


def test_logout_is_post_only(client, alice):
    client.force_login(alice)

    assert client.get("/logout").status_code == 405
    assert "_auth_user_id" in client.session
