"""Sign-in is refused after LOGIN_FAILURE_LIMIT failures within
LOGIN_FAILURE_WINDOW, per email and per client address."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from accounts import throttle
from tests.support.world import PASSWORD

LIMIT = 5
ADDRESS_LIMIT = 12


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.LOGIN_FAILURE_LIMIT = LIMIT
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = ADDRESS_LIMIT
    settings.LOGIN_FAILURE_WINDOW = timedelta(minutes=15)


def login(client, email, password, ip="10.0.0.1"):
    return client.post(
        "/login", {"username": email, "password": password}, REMOTE_ADDR=ip
    )


def fail(client, email, times, ip="10.0.0.1"):
    for _ in range(times):
        response = login(client, email, "wrong password", ip=ip)
        assert response.status_code == 200, "refused before the limit"


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_limit_reached_refuses_even_the_right_password(client, alice):
    fail(client, "alice@example.com", LIMIT)

    response = login(client, "alice@example.com", PASSWORD)

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert not signed_in(client)


def test_the_email_is_refused_from_any_address(client, alice):
    fail(client, "alice@example.com", LIMIT, ip="10.0.0.1")

    response = login(client, "ALICE@example.com", PASSWORD, ip="10.9.9.9")

    assert response.status_code == 429
    assert not signed_in(client)


def test_one_failure_short_of_the_limit_still_signs_in(client, alice):
    fail(client, "alice@example.com", LIMIT - 1)

    assert login(client, "alice@example.com", PASSWORD).status_code == 302


def test_other_emails_are_unaffected(client, alice, bob):
    fail(client, "alice@example.com", LIMIT, ip="10.0.0.1")

    response = login(client, "bob@example.com", PASSWORD, ip="10.0.0.2")

    assert response.status_code == 302
    assert signed_in(client)


def test_one_address_is_refused_after_failures_across_emails(client, alice):
    # A password spray: one guess each for many addresses. Colleagues behind
    # one address may fail more than one email's limit before it is refused.
    for n in range(ADDRESS_LIMIT - 1):
        fail(client, f"victim{n}@example.com", 1, ip="10.0.0.66")
    assert login(client, "alice@example.com", PASSWORD, ip="10.0.0.66").status_code == (
        302
    )
    client.post("/logout")
    fail(client, "victim-last@example.com", 1, ip="10.0.0.66")

    refused = login(client, "alice@example.com", PASSWORD, ip="10.0.0.66")
    elsewhere = login(client, "alice@example.com", PASSWORD, ip="10.0.0.1")

    assert refused.status_code == 429
    assert elsewhere.status_code == 302


def test_success_resets_the_email_counter(client, alice):
    fail(client, "alice@example.com", LIMIT - 1, ip="10.0.0.1")
    assert (
        login(client, "alice@example.com", PASSWORD, ip="10.0.0.1").status_code == 302
    )
    client.post("/logout")

    # Another LIMIT - 1 failures, from the same address, do not reach the limit.
    fail(client, "alice@example.com", LIMIT - 1, ip="10.0.0.1")

    assert (
        login(client, "alice@example.com", PASSWORD, ip="10.0.0.1").status_code == 302
    )


def test_success_does_not_forgive_other_emails_failures_from_the_address(client, alice):
    # Signing in to one's own account must not reset a spray's count.
    for n in range(ADDRESS_LIMIT - 1):
        fail(client, f"victim{n}@example.com", 1, ip="10.0.0.66")
    assert (
        login(client, "alice@example.com", PASSWORD, ip="10.0.0.66").status_code == 302
    )
    client.post("/logout")

    fail(client, "victim-last@example.com", 1, ip="10.0.0.66")

    assert (
        login(client, "alice@example.com", PASSWORD, ip="10.0.0.66").status_code == 429
    )


def test_refusal_ends_when_the_window_passes(client, alice, monkeypatch):
    fail(client, "alice@example.com", LIMIT)
    assert login(client, "alice@example.com", PASSWORD).status_code == 429

    later = throttle.time.time() + timedelta(minutes=15, seconds=1).total_seconds()
    monkeypatch.setattr(throttle.time, "time", lambda: later)

    assert login(client, "alice@example.com", PASSWORD).status_code == 302


def test_limit_and_window_come_from_settings(client, alice, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    fail(client, "alice@example.com", 2)

    response = login(client, "alice@example.com", PASSWORD)

    assert response.status_code == 429
    assert "Try again in 15 minute" in response.content.decode()


def test_passwords_are_never_logged(client, alice, caplog):
    caplog.set_level(logging.DEBUG)

    fail(client, "alice@example.com", LIMIT)
    login(client, "alice@example.com", PASSWORD)

    assert "wrong password" not in caplog.text
    assert PASSWORD not in caplog.text
    assert any("sign-in refused" in r.getMessage() for r in caplog.records)
