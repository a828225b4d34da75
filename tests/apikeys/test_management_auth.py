"""Authorization: Bearer <management key> on /api/v1."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework.test import APIClient

from apikeys.models import KeyKind
from apikeys.services import key_delete, key_update
from tests.support.keys import bearer, make_key


def test_a_management_key_authenticates_as_its_accounts_owner(alice):
    secret = make_key(alice, kind=KeyKind.MANAGEMENT).secret
    response = bearer(secret).get("/api/v1/balance")
    assert response.status_code == 200
    assert response.json()["total_credits"] == "50.000000000"


def test_a_management_key_manages_keys_without_csrf(alice):
    secret = make_key(alice, kind=KeyKind.MANAGEMENT).secret
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    created = client.post("/api/v1/keys", {"name": "from-ci"}, format="json")
    assert created.status_code == 201
    assert created.json()["key"].startswith("sk-ap-v1-")
    key_id = created.json()["id"]
    assert client.delete(f"/api/v1/keys/{key_id}").status_code == 204


def test_a_management_key_sees_only_its_own_account(alice, bob):
    bobs = make_key(bob).api_key
    secret = make_key(alice, kind=KeyKind.MANAGEMENT).secret
    client = bearer(secret)
    assert client.get(f"/api/v1/keys/{bobs.pk}").status_code == 404
    assert client.get("/api/v1/keys").json()["count"] == 0


def test_use_is_recorded_at_most_once_a_minute(alice):
    created = make_key(alice, kind=KeyKind.MANAGEMENT)
    client = bearer(created.secret)
    client.get("/api/v1/balance")
    created.api_key.refresh_from_db()
    first = created.api_key.last_used_at
    assert first is not None
    assert timezone.now() - first < timedelta(seconds=5)

    client.get("/api/v1/balance")
    created.api_key.refresh_from_db()
    assert created.api_key.last_used_at == first


def _refused(response):
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    return response.json()["detail"]


def test_a_payg_key_is_401_on_the_management_api(alice):
    secret = make_key(alice).secret
    detail = _refused(bearer(secret).get("/api/v1/balance"))
    assert "management key" in detail


def test_unknown_and_malformed_keys_are_401(alice):
    secret = make_key(alice, kind=KeyKind.MANAGEMENT).secret
    # Same shape, one character changed: the checksum no longer matches.
    changed = secret[:-7] + ("A" if secret[-7] != "A" else "B") + secret[-6:]
    for value in (changed, "sk-mg-v1-nope", "garbage", f"{secret} extra"):
        _refused(bearer(value).get("/api/v1/balance"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer")
    _refused(client.get("/api/v1/balance"))


def test_a_disabled_or_deleted_management_key_is_401(alice):
    disabled = make_key(alice, kind=KeyKind.MANAGEMENT)
    deleted = make_key(alice, kind=KeyKind.MANAGEMENT)
    key_update(api_key=disabled.api_key, status="disabled")
    key_delete(api_key=deleted.api_key)

    _refused(bearer(disabled.secret).get("/api/v1/balance"))
    _refused(bearer(deleted.secret).get("/api/v1/keys"))


def test_a_deactivated_owner_is_401(alice):
    secret = make_key(alice, kind=KeyKind.MANAGEMENT).secret
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    _refused(bearer(secret).get("/api/v1/balance"))


def test_no_credentials_is_401_with_a_bearer_challenge(db):
    response = APIClient().get("/api/v1/keys")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_the_console_session_still_works(alice, api_for):
    assert api_for(alice).get("/api/v1/balance").status_code == 200
