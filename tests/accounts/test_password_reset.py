from __future__ import annotations

import re

import pytest
from django.core import mail

from tests.conftest import PASSWORD

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
