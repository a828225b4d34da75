"""Operators: the read-only key list and the "Disable selected keys" action."""

from __future__ import annotations

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission

from accounts.models import User
from apikeys.models import ApiKey, KeyKind, KeyStatus
from tests.support.keys import bearer, make_key

CHANGELIST = "/admin/apikeys/apikey/"


def test_the_list_shows_keys_with_their_account_and_usage(client, ops, alice, bob):
    key = make_key(alice, name="alice-prod").api_key
    ApiKey.objects.filter(pk=key.pk).update(used_nanos=1_234_567_891)
    make_key(bob, name="bob-script", kind=KeyKind.MANAGEMENT)
    client.force_login(ops)

    page = client.get(CHANGELIST).content.decode()
    for shown in ("alice@example.com", "alice-prod", key.prefix, "$1.23"):
        assert shown in page
    assert "$1.234567891" not in page
    detail = client.get(f"{CHANGELIST}{key.pk}/change/").content.decode()
    assert "$1.234567891" in detail
    assert "bob-script" in page

    found = client.get(CHANGELIST, {"q": "alice@example"}).content.decode()
    assert "alice-prod" in found
    assert "bob-script" not in found
    by_prefix = client.get(CHANGELIST, {"q": key.prefix[:12]}).content.decode()
    assert "alice-prod" in by_prefix
    by_kind = client.get(CHANGELIST, {"kind__exact": "management"}).content.decode()
    assert "bob-script" in by_kind
    assert "alice-prod" not in by_kind


def test_keys_are_read_only_in_admin(client, ops, alice):
    key = make_key(alice, name="fixed").api_key
    client.force_login(ops)
    assert client.get(f"{CHANGELIST}add/").status_code == 403
    change = client.post(f"{CHANGELIST}{key.pk}/change/", {"name": "edited"})
    assert change.status_code == 403
    assert client.post(f"{CHANGELIST}{key.pk}/delete/").status_code == 403
    key.refresh_from_db()
    assert key.name == "fixed"
    page = client.get(CHANGELIST).content.decode()
    assert "delete_selected" not in page


def test_disable_action_asks_for_a_reason_then_records_it(client, ops, alice, bob):
    leaked = make_key(alice, kind=KeyKind.MANAGEMENT)
    also = make_key(bob)
    untouched = make_key(alice)
    client.force_login(ops)
    selected = [leaked.api_key.pk, also.api_key.pk]

    ask = client.post(
        CHANGELIST,
        {"action": "disable_selected", ACTION_CHECKBOX_NAME: selected},
    )
    assert ask.status_code == 200
    assert "reason" in ask.content.decode()
    assert ApiKey.objects.filter(status=KeyStatus.DISABLED).count() == 0

    no_reason = client.post(
        CHANGELIST,
        {
            "action": "disable_selected",
            ACTION_CHECKBOX_NAME: selected,
            "apply": "1",
            "reason": " ",
        },
    )
    assert no_reason.status_code == 200
    assert no_reason.context["form"].errors["reason"]
    assert ApiKey.objects.filter(status=KeyStatus.DISABLED).count() == 0

    done = client.post(
        CHANGELIST,
        {
            "action": "disable_selected",
            ACTION_CHECKBOX_NAME: selected,
            "apply": "1",
            "reason": "leaked in a public repository",
        },
    )
    assert done.status_code == 302
    for created in (leaked, also):
        created.api_key.refresh_from_db()
        assert created.api_key.status == KeyStatus.DISABLED
        assert created.api_key.disabled_by == ops
        assert created.api_key.disabled_reason == "leaked in a public repository"
    untouched.api_key.refresh_from_db()
    assert untouched.api_key.status == KeyStatus.ENABLED
    # Refused at once on the management API.
    assert bearer(leaked.secret).get("/api/v1/balance").status_code == 401


def test_the_customer_sees_why_support_disabled_a_key(client, ops, alice):
    key = make_key(alice).api_key
    client.force_login(ops)
    client.post(
        CHANGELIST,
        {
            "action": "disable_selected",
            ACTION_CHECKBOX_NAME: [key.pk],
            "apply": "1",
            "reason": "abuse report",
        },
    )
    client.force_login(alice)
    assert "By support: abuse report" in client.get("/console/keys").content.decode()


def test_staff_without_the_change_permission_cannot_disable(client, alice):
    viewer = User.objects.create_user(email="viewer@example.com", password="x" * 12)
    viewer.is_staff = True
    viewer.save()
    viewer.user_permissions.add(
        Permission.objects.get(
            codename="view_apikey", content_type__app_label="apikeys"
        )
    )
    key = make_key(alice).api_key
    client.force_login(viewer)
    assert client.get(CHANGELIST).status_code == 200
    client.post(
        CHANGELIST,
        {
            "action": "disable_selected",
            ACTION_CHECKBOX_NAME: [key.pk],
            "apply": "1",
            "reason": "curious",
        },
    )
    key.refresh_from_db()
    assert key.status == KeyStatus.ENABLED
