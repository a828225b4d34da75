"""GET/POST /api/v1/keys and GET/PATCH/DELETE /api/v1/keys/{id}."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apikeys import api
from apikeys.errors import ApiKeyError
from apikeys.models import ApiKey, KeyKind, KeyStatus
from apikeys.secrets import PAYG_PREFIX, key_is_well_formed
from tests.support.keys import make_key

KEY_FIELDS = {
    "id",
    "name",
    "prefix",
    "status",
    "created_at",
    "last_used_at",
    "used",
    "limit",
    "limit_reset",
}


def test_create_returns_the_key_once_and_later_reads_never_do(alice, api_for):
    client = api_for(alice)
    response = client.post("/api/v1/keys", {"name": "production-app"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == KEY_FIELDS | {"key"}
    assert response["Cache-Control"] == "no-store"
    secret = body["key"]
    assert key_is_well_formed(secret, PAYG_PREFIX)
    assert body["name"] == "production-app"
    assert body["status"] == "enabled"
    assert body["used"] == "0.000000000"
    assert body["limit"] is None
    assert body["limit_reset"] == "none"
    assert body["last_used_at"] is None
    assert body["prefix"] == f"{secret[:12]}…{secret[-4:]}"

    listed = client.get("/api/v1/keys").json()
    detail = client.get(f"/api/v1/keys/{body['id']}").json()
    assert listed["count"] == 1
    assert set(listed) == {"count", "next", "previous", "results"}
    assert set(listed["results"][0]) == KEY_FIELDS
    assert set(detail) == KEY_FIELDS
    for later in (listed, detail):
        assert secret not in str(later)
        assert secret[len(PAYG_PREFIX) :][:-6] not in str(later)


def test_list_is_newest_first_paginated_and_payg_unless_asked(alice, api_for):
    first = make_key(alice, name="first")
    second = make_key(alice, name="second")
    make_key(alice, name="ops-script", kind=KeyKind.MANAGEMENT)
    client = api_for(alice)

    body = client.get("/api/v1/keys").json()
    assert [k["id"] for k in body["results"]] == [
        second.api_key.pk,
        first.api_key.pk,
    ]
    page = client.get("/api/v1/keys/?limit=1").json()
    assert page["count"] == 2
    assert len(page["results"]) == 1
    assert page["next"] is not None

    management = client.get("/api/v1/keys?kind=management").json()
    assert [k["name"] for k in management["results"]] == ["ops-script"]
    bad = client.get("/api/v1/keys?kind=admin")
    assert bad.status_code == 400
    assert "kind" in bad.json()


def test_create_with_a_limit_and_as_a_management_key(alice, api_for):
    client = api_for(alice)
    limited = client.post(
        "/api/v1/keys",
        {"name": "capped", "limit": "12.5", "limit_reset": "monthly"},
        format="json",
    ).json()
    assert limited["limit"] == "12.500000000"
    assert limited["limit_reset"] == "monthly"

    whole = client.post(
        "/api/v1/keys", {"name": "whole", "limit": 7}, format="json"
    ).json()
    assert whole["limit"] == "7.000000000"

    created = client.post(
        "/api/v1/keys", {"name": "automation", "kind": "management"}, format="json"
    )
    assert created.status_code == 201
    assert created.json()["key"].startswith("sk-mg-v1-")
    assert ApiKey.objects.get(pk=created.json()["id"]).kind == KeyKind.MANAGEMENT


def test_patch_renames_disables_and_sets_a_limit(alice, api_for):
    key = make_key(alice, name="old").api_key
    client = api_for(alice)
    url = f"/api/v1/keys/{key.pk}"

    body = client.patch(
        url, {"limit": "5", "limit_reset": "daily"}, format="json"
    ).json()
    assert body["limit"] == "5.000000000"
    assert body["limit_reset"] == "daily"

    body = client.patch(
        url, {"name": "new", "status": "disabled"}, format="json"
    ).json()
    assert (body["name"], body["status"]) == ("new", "disabled")
    assert body["limit"] == "5.000000000"  # untouched

    body = client.patch(url, {"limit": None}, format="json").json()
    assert body["limit"] is None
    key.refresh_from_db()
    assert key.limit_nanos is None
    assert key.status == KeyStatus.DISABLED

    assert client.patch(url, {"status": "enabled"}, format="json").json()["status"] == (
        "enabled"
    )


def test_delete_answers_204_and_the_key_is_gone_but_its_row_stays(alice, api_for):
    key = make_key(alice).api_key
    client = api_for(alice)

    assert client.delete(f"/api/v1/keys/{key.pk}/").status_code == 204
    assert client.get(f"/api/v1/keys/{key.pk}").status_code == 404
    assert client.patch(
        f"/api/v1/keys/{key.pk}", {"name": "x"}, format="json"
    ).status_code == (404)
    assert client.delete(f"/api/v1/keys/{key.pk}").status_code == 404
    assert client.get("/api/v1/keys").json()["count"] == 0
    key.refresh_from_db()
    assert key.deleted_at is not None
    assert key.status == KeyStatus.DISABLED


def test_another_accounts_key_is_404_on_every_method(alice, bob, api_for):
    key = make_key(alice, name="alice's").api_key
    client = api_for(bob)
    url = f"/api/v1/keys/{key.pk}"

    assert client.get(url).status_code == 404
    assert client.patch(url, {"name": "mine"}, format="json").status_code == 404
    assert client.delete(url).status_code == 404
    assert client.get("/api/v1/keys").json()["count"] == 0
    key.refresh_from_db()
    assert key.name == "alice's"
    assert key.deleted_at is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({}, "name"),
        ({"name": "k", "limit": 5.5}, "limit"),
        ({"name": "k", "limit": "-1"}, "limit"),
        ({"name": "k", "limit": "0"}, "limit"),
        ({"name": "k", "limit": "abc"}, "limit"),
        ({"name": "k", "limit": "0.0000000001"}, "limit"),
        ({"name": "k", "limit": True}, "limit"),
        ({"name": "k", "limit_reset": "hourly"}, "limit_reset"),
        ({"name": "k", "kind": "root"}, "kind"),
        ({"name": "k", "kind": "management", "limit": "5"}, "limit"),
    ],
)
def test_bad_create_input_is_400_naming_the_field(alice, api_for, body, field):
    response = api_for(alice).post("/api/v1/keys", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert ApiKey.objects.count() == 0


def test_a_float_limit_is_refused_with_advice_to_send_a_string(alice, api_for):
    response = api_for(alice).post(
        "/api/v1/keys", {"name": "k", "limit": 5.5}, format="json"
    )
    assert "decimal string" in response.json()["limit"][0]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"status": "paused"}, "status"),
        ({"limit": 1.25}, "limit"),
        ({"limit": "-5"}, "limit"),
        ({"limit_reset": "yearly"}, "limit_reset"),
    ],
)
def test_bad_patch_input_is_400_naming_the_field_and_changes_nothing(
    alice, api_for, body, field
):
    key = make_key(alice, name="keep").api_key
    response = api_for(alice).patch(f"/api/v1/keys/{key.pk}", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    key.refresh_from_db()
    assert (key.name, key.status, key.limit_nanos) == ("keep", "enabled", None)


def test_a_service_refusal_maps_to_400(alice, api_for, monkeypatch):
    def refuse(**kwargs):
        raise ApiKeyError("name: refused by the service")

    monkeypatch.setattr(api, "key_create", refuse)
    response = api_for(alice).post("/api/v1/keys", {"name": "k"}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid_api_key_request",
            "message": "name: refused by the service",
        }
    }


def test_session_writes_need_the_csrf_token(alice):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post("/api/v1/keys", {"name": "k"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert client.get("/api/v1/keys").status_code == 200


def test_a_customer_cannot_lift_a_block_support_placed(alice, ops):
    from rest_framework.test import APIClient

    from apikeys.services import key_create, key_disable_by_operator

    created = key_create(account=alice.account, name="leaked")
    key_disable_by_operator(api_key=created.api_key, operator=ops, reason="leaked")
    client = APIClient()
    client.force_login(alice)
    response = client.patch(
        f"/api/v1/keys/{created.api_key.pk}", {"status": "enabled"}, format="json"
    )
    assert response.status_code == 400
    assert "disabled by support" in response.json()["error"]["message"]
    created.api_key.refresh_from_db()
    assert created.api_key.status == "disabled"
