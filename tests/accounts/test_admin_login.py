"""Operators sign in at /admin/login/ through the same throttle as the
console's sign-in: per email and per client address."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.world import PASSWORD

LIMIT = 5
ADDRESS_LIMIT = 12


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.LOGIN_FAILURE_LIMIT = LIMIT
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = ADDRESS_LIMIT
    settings.LOGIN_FAILURE_WINDOW = timedelta(minutes=15)


def admin_login(client, email, password, ip="10.0.0.1"):
    return client.post(
        "/admin/login/",
        {"username": email, "password": password, "next": "/admin/"},
        REMOTE_ADDR=ip,
    )


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_the_right_password_signs_an_operator_in(client, ops):
    response = admin_login(client, "ops@example.com", PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert signed_in(client)


def test_twelve_wrong_passwords_then_the_right_one_is_refused(client, ops):
    for n in range(12):
        response = admin_login(client, "ops@example.com", f"guess {n}")
        assert response.status_code == (200 if n < LIMIT else 429), n

    response = admin_login(client, "ops@example.com", PASSWORD)

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert not signed_in(client)
    # Nor from another address: the limit is per email too.
    assert (
        admin_login(client, "ops@example.com", PASSWORD, ip="10.9.9.9").status_code
        == 429
    )


def test_failures_at_the_console_count_at_admin_and_back(client, ops):
    # One counter per email: the two doors cannot be used to double the guesses.
    for _ in range(LIMIT - 1):
        client.post(
            "/login",
            {"username": "ops@example.com", "password": "x"},
            REMOTE_ADDR="10.0.0.1",
        )
    assert admin_login(client, "ops@example.com", "y").status_code == 200

    assert admin_login(client, "ops@example.com", PASSWORD).status_code == 429
    console = client.post(
        "/login",
        {"username": "ops@example.com", "password": PASSWORD},
        REMOTE_ADDR="10.0.0.1",
    )
    assert console.status_code == 429


def test_one_address_spraying_many_emails_is_refused(client, ops):
    for n in range(ADDRESS_LIMIT):
        assert (
            admin_login(
                client, f"victim{n}@example.com", "guess", ip="10.0.0.66"
            ).status_code
            == 200
        )

    assert (
        admin_login(client, "ops@example.com", PASSWORD, ip="10.0.0.66").status_code
        == 429
    )
    assert (
        admin_login(client, "ops@example.com", PASSWORD, ip="10.0.0.2").status_code
        == 302
    )


def test_a_customer_with_the_right_password_is_refused_and_it_counts(client, alice):
    # Not staff: refused like a wrong password, and counted as a failure, so
    # neither the answer nor the lock-out tells a right password apart.
    for _ in range(LIMIT):
        response = admin_login(client, "alice@example.com", PASSWORD)
        assert response.status_code == 200
        assert "do not match a staff account" in response.content.decode()
        assert not signed_in(client)

    assert admin_login(client, "alice@example.com", PASSWORD).status_code == 429
