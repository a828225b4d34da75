"""A key's history: every change of its status, credit limit or existence is a
key action (who, when, why, before and after), added and never overwritten."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import DatabaseError, transaction

from apikeys.models import KeyAction, KeyActionKind, KeyStatus, LimitReset
from apikeys.services import (
    key_delete,
    key_disable_by_operator,
    key_enable_by_operator,
    key_update,
)
from tests.support.keys import make_key

CHANGELIST = "/admin/apikeys/apikey/"


def history(api_key) -> list[tuple]:
    return [
        (a.action, a.actor, a.reason, a.status_before, a.status_after)
        for a in KeyAction.objects.filter(api_key=api_key).order_by("at", "id")
    ]


def test_operator_history_is_kept_across_disable_enable_disable(ops, alice):
    key = make_key(alice).api_key

    key_disable_by_operator(api_key=key, operator=ops, reason="leaked on a forum")
    key_enable_by_operator(api_key=key, operator=ops, reason="rotated by the owner")
    key_disable_by_operator(api_key=key, operator=ops, reason="leaked again")

    on, off = KeyStatus.ENABLED, KeyStatus.DISABLED
    assert history(key) == [
        (KeyActionKind.OPERATOR_DISABLED, ops, "leaked on a forum", on, off),
        (KeyActionKind.OPERATOR_ENABLED, ops, "rotated by the owner", off, on),
        (KeyActionKind.OPERATOR_DISABLED, ops, "leaked again", on, off),
    ]
    # The key itself says its present state only.
    key.refresh_from_db()
    assert (key.status, key.disabled_reason, key.disabled_by) == (
        off,
        "leaked again",
        ops,
    )


def test_the_admin_actions_write_history_and_the_key_page_shows_it(client, ops, alice):
    key = make_key(alice).api_key
    client.force_login(ops)
    selected = {ACTION_CHECKBOX_NAME: [key.pk]}

    client.post(
        CHANGELIST,
        {"action": "disable_selected", "apply": "1", "reason": "abuse", **selected},
    )
    client.post(CHANGELIST, {"action": "enable_selected", **selected})
    client.post(
        CHANGELIST,
        {
            "action": "disable_selected",
            "apply": "1",
            "reason": "abuse again",
            **selected,
        },
    )

    assert [(action, reason) for action, _, reason, _, _ in history(key)] == [
        (KeyActionKind.OPERATOR_DISABLED, "abuse"),
        (KeyActionKind.OPERATOR_ENABLED, ""),
        (KeyActionKind.OPERATOR_DISABLED, "abuse again"),
    ]
    page = client.get(f"{CHANGELIST}{key.pk}/change/").content.decode()
    assert "History" in page
    assert "Disabled by an operator" in page and "Enabled by an operator" in page
    assert "abuse again" in page and ">abuse<" in page
    # Read-only: nothing to add, change or delete in it.
    assert "actions-0-DELETE" not in page
    assert client.post(f"{CHANGELIST}{key.pk}/change/", {}).status_code == 403


def test_the_owners_changes_are_recorded_with_them_as_the_actor(alice):
    key = make_key(alice).api_key

    key_update(api_key=key, name="renamed", actor=alice)  # a name is not history
    key_update(api_key=key, status=KeyStatus.DISABLED, actor=alice)
    key_update(
        api_key=key,
        status=KeyStatus.ENABLED,
        limit_nanos=5_000_000_000,
        limit_reset=LimitReset.DAILY,
        actor=alice,
    )
    key_update(api_key=key, limit_nanos=5_000_000_000, actor=alice)  # unchanged
    key_delete(api_key=key, actor=alice)
    key_delete(api_key=key, actor=alice)  # deleted already: nothing more

    actions = list(KeyAction.objects.filter(api_key=key).order_by("at", "id"))
    assert [a.action for a in actions] == [
        KeyActionKind.DISABLED,
        KeyActionKind.ENABLED,
        KeyActionKind.LIMIT_CHANGED,
        KeyActionKind.DELETED,
    ]
    assert {a.actor for a in actions} == {alice}
    enabled, limited = actions[1], actions[2]
    # One change each: the status first, then the limit.
    assert (enabled.limit_nanos_before, enabled.limit_nanos_after) == (None, None)
    assert (limited.status_before, limited.status_after) == ("enabled", "enabled")
    assert (limited.limit_nanos_before, limited.limit_nanos_after) == (
        None,
        5_000_000_000,
    )
    assert (limited.limit_reset_before, limited.limit_reset_after) == (
        LimitReset.NONE,
        LimitReset.DAILY,
    )
    assert (actions[3].status_before, actions[3].status_after) == (
        "enabled",
        "disabled",
    )


def test_the_api_and_the_console_record_who_changed_a_key(client, alice, api_for):
    key = make_key(alice).api_key
    api_for(alice).patch(
        f"/api/v1/keys/{key.pk}", {"status": "disabled"}, format="json"
    )
    client.force_login(alice)
    client.post(f"/console/keys/{key.pk}/status", {"status": "enabled"})
    client.post(f"/console/keys/{key.pk}/delete")

    assert [(action, actor) for action, actor, *_ in history(key)] == [
        (KeyActionKind.DISABLED, alice),
        (KeyActionKind.ENABLED, alice),
        (KeyActionKind.DELETED, alice),
    ]


@pytest.mark.parametrize("change", ["update", "delete"])
def test_key_actions_are_never_overwritten(ops, alice, change):
    key = make_key(alice).api_key
    key_disable_by_operator(api_key=key, operator=ops, reason="leaked")
    rows = KeyAction.objects.filter(api_key=key)

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        if change == "update":
            rows.update(reason="nothing happened")
        else:
            rows.delete()

    assert [a.reason for a in rows] == ["leaked"]
