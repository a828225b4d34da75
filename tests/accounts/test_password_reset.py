from __future__ import annotations

import re

import pytest
from django.core import mail

from tests.support.world import PASSWORD

NEW_PASSWORD = "quartz-meadow-ferry-81"


def reset_link(message) -> str:
    match = re.search(r"https?://[^/\s]+(/password-reset/\S+)", message.body)
    assert match, message.body
    return match.group(1)


def test_reset_email_is_sent_and_its_link_sets_a_new_password(client, alice):
    response = client.post("/password-reset", {"email": "Alice@Example.com"})

    assert response.status_code == 302
    assert response["Location"] == "/password-reset/sent"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@example.com"]
    assert "Reset your AGIPower password" in message.subject

    # The link stores the token in the session and redirects to a token-free URL.
    form_page = client.get(reset_link(message), follow=True)
    assert form_page.status_code == 200
    assert form_page.context["validlink"]
    response = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert response["Location"] == "/password-reset/complete"

    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    assert not alice.check_password(PASSWORD)
    login = client.post(
        "/login", {"username": "alice@example.com", "password": NEW_PASSWORD}
    )
    assert login.status_code == 302


def test_a_reset_link_works_once(client, alice):
    client.post("/password-reset", {"email": "alice@example.com"})
    link = reset_link(mail.outbox[0])
    form_page = client.get(link, follow=True)
    client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    again = client.get(link, follow=True)

    assert again.status_code == 200
    assert not again.context["validlink"]
    assert "invalid" in again.content.decode()


def test_the_new_password_must_pass_the_validators(client, alice):
    client.post("/password-reset", {"email": "alice@example.com"})
    form_page = client.get(reset_link(mail.outbox[0]), follow=True)

    response = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "12345678", "new_password2": "12345678"},
    )

    assert response.status_code == 200
    assert "too common" in response.content.decode()
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


@pytest.mark.django_db
def test_an_unknown_email_gets_the_same_answer_and_no_mail(client):
    response = client.post("/password-reset", {"email": "nobody@example.com"})

    assert response.status_code == 302
    assert response["Location"] == "/password-reset/sent"
    assert mail.outbox == []


# --- Throttling: per email and per client address ------------------------------

RESET_LIMIT = 3
RESET_ADDRESS_LIMIT = 5


@pytest.fixture
def reset_limits(settings):
    from datetime import timedelta

    settings.PASSWORD_RESET_LIMIT = RESET_LIMIT
    settings.PASSWORD_RESET_ADDRESS_LIMIT = RESET_ADDRESS_LIMIT
    settings.PASSWORD_RESET_WINDOW = timedelta(minutes=60)


def ask_reset(client, email, ip="10.0.0.1"):
    return client.post("/password-reset", {"email": email}, REMOTE_ADDR=ip)


def test_fifteen_requests_send_at_most_the_limit_of_emails(client, alice, reset_limits):
    answers = [ask_reset(client, "alice@example.com").status_code for _ in range(15)]

    assert len(mail.outbox) == RESET_LIMIT
    assert answers == [302] * RESET_LIMIT + [429] * (15 - RESET_LIMIT)


def test_a_refused_request_says_when_to_try_again(client, alice, reset_limits):
    for _ in range(RESET_LIMIT):
        ask_reset(client, "alice@example.com")

    # From another address too: the limit is per email.
    response = ask_reset(client, "ALICE@example.com", ip="10.9.9.9")

    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 3600
    assert "Too many password reset requests" in response.content.decode()
    assert "Try again in 60 minute" in response.content.decode()
    assert len(mail.outbox) == RESET_LIMIT


def test_unknown_emails_count_the_same_so_a_refusal_reveals_nothing(
    client, alice, reset_limits
):
    for _ in range(RESET_LIMIT):
        assert ask_reset(client, "nobody@example.com").status_code == 302

    unknown = ask_reset(client, "nobody@example.com")
    known = [
        ask_reset(client, "alice@example.com", ip="10.0.0.2")
        for _ in range(RESET_LIMIT + 1)
    ]

    assert unknown.status_code == 429
    assert [r.status_code for r in known] == [302] * RESET_LIMIT + [429]


def test_one_address_asking_for_many_emails_is_refused(
    client, alice, bob, reset_limits
):
    for n in range(RESET_ADDRESS_LIMIT - 1):
        assert (
            ask_reset(client, f"someone{n}@example.com", ip="10.0.0.66").status_code
            == 302
        )
    assert ask_reset(client, "bob@example.com", ip="10.0.0.66").status_code == 302

    refused = ask_reset(client, "alice@example.com", ip="10.0.0.66")
    elsewhere = ask_reset(client, "alice@example.com", ip="10.0.0.2")

    assert refused.status_code == 429
    assert elsewhere.status_code == 302
    assert [m.to for m in mail.outbox] == [["bob@example.com"], ["alice@example.com"]]


def test_requests_are_allowed_again_when_the_window_ends(
    client, alice, reset_limits, monkeypatch
):
    from accounts import throttle

    for _ in range(RESET_LIMIT):
        ask_reset(client, "alice@example.com")
    assert ask_reset(client, "alice@example.com").status_code == 429

    later = throttle.time.time() + 3601
    monkeypatch.setattr(throttle.time, "time", lambda: later)

    assert ask_reset(client, "alice@example.com").status_code == 302
    assert len(mail.outbox) == RESET_LIMIT + 1


def test_an_invalid_email_is_a_form_error_and_not_counted(client, alice, reset_limits):
    for _ in range(RESET_LIMIT + 2):
        response = ask_reset(client, "not an email")
        assert response.status_code == 200
        assert "valid email" in response.content.decode()

    assert ask_reset(client, "alice@example.com").status_code == 302
