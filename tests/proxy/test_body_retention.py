"""The data retention switch (proxy/body_retention.py): off by default; on, the
real proxy keeps the bodies of JSON and streamed calls, compressed, until
their days pass; off, every body kept is shown no more at once, deleted by a
task queued on commit, a batch at a time, and new calls keep none, even while
the proxy's key cache still says on; never another account's. Through
``GET, PUT /api/v1/data-retention`` and the console page."""

from __future__ import annotations

import threading
from datetime import timedelta

import orjson
import psycopg
import pytest
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from apikeys.models import KeyKind
from apikeys.services import key_create
from proxy import body_retention, tasks
from proxy.body_retention import body_retention_get, body_retention_set
from proxy.models import RequestBody, RequestLog
from tests.support.bodies import KEEP_SQL, bodies_keep, keep_params, unpacked
from tests.support.pages import texts
from tests.support.platform import database_url
from tests.support.usage import usage_commit, usage_item
from tests.support.world import grant


def api_for(user) -> APIClient:
    """A user calling /api/v1 with a management key, as an integrator would."""
    secret = key_create(
        account=user.account, name="manage", kind=KeyKind.MANAGEMENT
    ).secret
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def messages(text: str) -> list[dict]:
    return [{"role": "user", "content": f"Tell me a story {text}"}]


def sse_data(stream: bytes) -> list[dict]:
    """The JSON of each event of a kept stream."""
    events = [event for event in stream.split(b"\n\n") if event.strip()]
    return [
        orjson.loads(
            b"".join(
                line[5:].strip()
                for line in event.split(b"\n")
                if line.startswith(b"data:")
            )
        )
        for event in events
    ]


# --- through the real proxy ------------------------------------------------------


def test_switched_on_json_and_streamed_calls_keep_their_bodies(alice, alice_client):
    body_retention_set(account=alice.account, store_bodies=True, retention_days=3)

    asked = messages("#upstream prompt_tokens=12 completion_tokens=4")
    raw = alice_client.chat.completions.with_raw_response.create(
        model="fake/gpt", messages=asked, temperature=0.5
    )
    kept = RequestBody.objects.get(request_id=raw.headers["x-request-id"])
    log = RequestLog.objects.get(pk=kept.request_id)
    assert kept.account_id == alice.account.pk
    assert orjson.loads(unpacked(kept.request)) == {
        "model": "fake/gpt",
        "messages": asked,
        "temperature": 0.5,
    }
    # The answer as the client received it, byte for byte.
    assert unpacked(kept.response) == raw.http_response.content
    assert raw.parse().usage.completion_tokens == 4
    assert (kept.created_at, kept.expires_at) == (
        log.created_at,
        log.created_at + timedelta(days=3),
    )
    assert not kept.truncated
    # Kept compressed.
    assert bytes(kept.request)[:1] == b"\x78"

    asked = messages("#upstream completion_tokens=5")
    stream = alice_client.chat.completions.create(
        model="fake/gpt",
        messages=asked,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    kept = RequestBody.objects.get(request_id=stream.response.headers["x-request-id"])
    assert orjson.loads(unpacked(kept.request)) == {
        "model": "fake/gpt",
        "messages": asked,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    *events, usage = sse_data(unpacked(kept.response))
    # Every event the client received, and upstream's usage.
    assert events == [chunk.to_dict() for chunk in chunks[:-1]]
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in events) == (
        "tok tok tok tok tok"
    )
    assert usage == {"usage": chunks[-1].usage.to_dict()}
    assert RequestBody.objects.count() == 2


def test_off_by_default_nothing_is_kept(alice, alice_client):
    assert not body_retention_get(account=alice.account).enabled
    alice_client.chat.completions.create(model="fake/gpt", messages=messages(""))
    assert RequestLog.objects.count() == 1
    assert not RequestBody.objects.exists()


def test_switching_off_deletes_every_body_and_new_calls_keep_none(alice, alice_client):
    api = api_for(alice)
    assert api.put(
        "/api/v1/data-retention",
        {"store_bodies": True, "retention_days": 3},
        format="json",
    ).json() == {"store_bodies": True, "retention_days": 3}
    alice_client.chat.completions.create(model="fake/gpt", messages=messages("a"))
    list(
        alice_client.chat.completions.create(
            model="fake/gpt", messages=messages("b"), stream=True
        )
    )
    assert RequestBody.objects.filter(account=alice.account).count() == 2

    answer = api.put("/api/v1/data-retention", {"store_bodies": False}, format="json")
    assert answer.status_code == 200
    assert answer.json() == {"store_bodies": False, "retention_days": 3}
    assert not RequestBody.objects.exists()

    # At once: the proxy's key cache may still say "keep", the settlement
    # reads the switch itself.
    alice_client.chat.completions.create(model="fake/gpt", messages=messages("c"))
    list(
        alice_client.chat.completions.create(
            model="fake/gpt", messages=messages("d"), stream=True
        )
    )
    assert RequestLog.objects.count() == 4
    assert not RequestBody.objects.exists()


def test_expired_bodies_are_deleted_and_new_days_apply_to_new_bodies(
    alice, alice_client
):
    body_retention_set(account=alice.account, store_bodies=True, retention_days=1)
    first = alice_client.chat.completions.with_raw_response.create(
        model="fake/gpt", messages=messages("1")
    )
    second = alice_client.chat.completions.with_raw_response.create(
        model="fake/gpt", messages=messages("2")
    )
    body_retention_set(account=alice.account, store_bodies=True, retention_days=5)
    third = alice_client.chat.completions.with_raw_response.create(
        model="fake/gpt", messages=messages("3")
    )
    days = {
        str(body.request_id): (body.expires_at - body.created_at).days
        for body in RequestBody.objects.all()
    }
    assert days == {
        first.headers["x-request-id"]: 1,
        second.headers["x-request-id"]: 1,
        third.headers["x-request-id"]: 5,
    }

    RequestBody.objects.filter(request_id=first.headers["x-request-id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert tasks.request_bodies_expire.delay().get() == 1
    assert set(map(str, RequestBody.objects.values_list("request_id", flat=True))) == {
        second.headers["x-request-id"],
        third.headers["x-request-id"],
    }
    assert tasks.request_bodies_expire.delay().get() == 0


def test_another_accounts_switch_and_bodies_are_its_own(
    alice, alice_client, bob, client_for, client
):
    grant(bob, "5")
    bob_client = client_for(key_create(account=bob.account, name="bob").secret)
    body_retention_set(account=alice.account, store_bodies=True, retention_days=2)
    body_retention_set(account=bob.account, store_bodies=True, retention_days=9)
    alice_client.chat.completions.create(model="fake/gpt", messages=messages("a"))
    bob_client.chat.completions.create(model="fake/gpt", messages=messages("b"))
    bob_body = RequestBody.objects.get(account=bob.account)

    alice_api = api_for(alice)
    assert alice_api.put(
        "/api/v1/data-retention", {"store_bodies": False}, format="json"
    ).json() == {"store_bodies": False, "retention_days": 2}
    assert list(RequestBody.objects.all()) == [bob_body]
    assert api_for(bob).get("/api/v1/data-retention").json() == {
        "store_bodies": True,
        "retention_days": 9,
    }
    bob_client.chat.completions.create(model="fake/gpt", messages=messages("c"))
    assert RequestBody.objects.filter(account=bob.account).count() == 2

    # alice's page counts hers only.
    client.force_login(alice)
    page = client.get("/console/data-retention")
    assert texts(page, "data-retention-stored") == ["0 bodies stored now."]


# --- the API and the page, without calls -----------------------------------------


@pytest.mark.django_db
def test_the_api_answers_the_default_and_refuses_bad_input_naming_the_field(alice):
    api = api_for(alice)
    assert api.get("/api/v1/data-retention").json() == {
        "store_bodies": False,
        "retention_days": 7,
    }
    for body, field in (
        ({"store_bodies": True, "retention_days": 0}, "retention_days"),
        ({"store_bodies": True, "retention_days": 31}, "retention_days"),
        ({"store_bodies": True, "retention_days": "a week"}, "retention_days"),
        ({"retention_days": 3}, "store_bodies"),
        ({"store_bodies": "maybe"}, "store_bodies"),
    ):
        answer = api.put("/api/v1/data-retention", body, format="json")
        assert answer.status_code == 400, body
        assert field in answer.json(), answer.json()
    assert not body_retention_get(account=alice.account).enabled
    assert APIClient().get("/api/v1/data-retention").status_code == 401
    # The days alone may change; on, and then 30 days.
    assert api.put(
        "/api/v1/data-retention/", {"store_bodies": True}, format="json"
    ).json() == {"store_bodies": True, "retention_days": 7}
    assert api.put(
        "/api/v1/data-retention",
        {"store_bodies": True, "retention_days": 30},
        format="json",
    ).json() == {"store_bodies": True, "retention_days": 30}


@pytest.mark.django_db
def test_the_api_turns_it_on_again_once_the_bodies_are_deleted(
    alice, django_capture_on_commit_callbacks
):
    api = api_for(alice)
    body_retention_set(account=alice.account, store_bodies=True, retention_days=3)
    item = usage_item(key_create(account=alice.account, name="k"), at=timezone.now())
    usage_commit(alice.account.pk, [item])
    bodies_keep(alice.account.pk, item)
    with django_capture_on_commit_callbacks() as queued:
        off = api.put("/api/v1/data-retention", {"store_bodies": False}, format="json")
    assert off.json() == {"store_bodies": False, "retention_days": 3}
    on = {"store_bodies": True}
    refused = api.put("/api/v1/data-retention", on, format="json")
    assert refused.status_code == 409
    assert "still being deleted" in refused.json()["store_bodies"][0]
    [purge] = queued
    purge()
    assert api.put("/api/v1/data-retention", on, format="json").json() == {
        "store_bodies": True,
        "retention_days": 3,
    }


@pytest.mark.django_db
def test_the_console_page_turns_it_on_and_off(
    alice, client, django_capture_on_commit_callbacks
):
    client.force_login(alice)
    page = client.get("/console/data-retention")
    assert page.status_code == 200
    assert texts(page, "data-retention-status")[0].startswith("Bodies are not stored.")
    assert b'aria-current="page"' in page.content and b"Data retention" in page.content

    page = client.post(
        "/console/data-retention",
        {"store_bodies": "on", "retention_days": "10"},
        follow=True,
    )
    assert "stored from now on, each for 10 days" in page.content.decode()
    retention = body_retention_get(account=alice.account)
    assert (retention.enabled, retention.days) == (True, 10)

    refused = client.post(
        "/console/data-retention", {"store_bodies": "on", "retention_days": "31"}
    )
    assert refused.status_code == 400
    assert "less than or equal to 30" in refused.content.decode()
    assert body_retention_get(account=alice.account).days == 10

    key = key_create(account=alice.account, name="k")
    items = [usage_item(key, at=timezone.now()) for _ in range(2)]
    usage_commit(alice.account.pk, items)
    for item in items:
        bodies_keep(alice.account.pk, item)
    page = client.get("/console/data-retention")
    assert texts(page, "data-retention-stored") == ["2 bodies stored now."]

    # Off: at once, and the deletion queued for when it has committed.
    with django_capture_on_commit_callbacks() as queued:
        page = client.post(
            "/console/data-retention", {"retention_days": "10"}, follow=True
        )
    assert "Bodies are not stored. Those stored before are no longer shown" in (
        page.content.decode()
    )
    assert not body_retention_get(account=alice.account).enabled
    assert texts(page, "data-retention-stored") == [
        "2 bodies stored before, no longer shown, being deleted."
    ]
    # On again only once they are gone.
    refused = client.post(
        "/console/data-retention", {"store_bodies": "on", "retention_days": "10"}
    )
    assert refused.status_code == 400
    assert "still being deleted" in refused.content.decode()
    assert not body_retention_get(account=alice.account).enabled

    [purge] = queued
    purge()
    assert not RequestBody.objects.exists()
    page = client.get("/console/data-retention")
    assert texts(page, "data-retention-stored") == ["0 bodies stored now."]
    page = client.post(
        "/console/data-retention", {"store_bodies": "on", "retention_days": "10"}
    )
    assert page.status_code == 302
    assert body_retention_get(account=alice.account).enabled


@pytest.mark.django_db
def test_turning_off_deletes_in_batches_after_the_switch_has_committed(
    alice, monkeypatch, django_capture_on_commit_callbacks
):
    body_retention_set(account=alice.account, store_bodies=True, retention_days=3)
    key = key_create(account=alice.account, name="k")
    items = [usage_item(key, at=timezone.now()) for _ in range(25)]
    usage_commit(alice.account.pk, items)
    for item in items:
        bodies_keep(alice.account.pk, item)
    monkeypatch.setattr(body_retention, "DELETE_BATCH", 10)
    with django_capture_on_commit_callbacks() as queued:
        body_retention_set(account=alice.account, store_bodies=False, retention_days=3)
    # The switch's transaction deleted nothing; its commit queues the purge.
    assert RequestBody.objects.count() == 25
    deletes = []
    monkeypatch.setattr(
        body_retention,
        "_delete_in_batches",
        _counting(body_retention._delete_in_batches, deletes),
    )
    [purge] = queued
    purge()
    assert not RequestBody.objects.exists()
    assert deletes == [25]

    # Again, with the switch on: the purge deletes nothing.
    body_retention_set(account=alice.account, store_bodies=True, retention_days=3)
    item = usage_item(key, at=timezone.now())
    usage_commit(alice.account.pk, [item])
    assert bodies_keep(alice.account.pk, item)
    assert tasks_purge(alice.account.pk) == 0
    assert RequestBody.objects.count() == 1


def _counting(delete, counts: list):
    def counted(*args, **kwargs):
        counts.append(delete(*args, **kwargs))
        return counts[-1]

    return counted


def tasks_purge(account_id: int) -> int:
    return body_retention.request_bodies_purge_task.delay(account_id).get()


@pytest.mark.django_db
def test_the_hourly_task_finishes_a_purge_that_was_lost(
    alice, bob, django_capture_on_commit_callbacks
):
    for user in (alice, bob):
        body_retention_set(account=user.account, store_bodies=True, retention_days=3)
        key = key_create(account=user.account, name="k")
        item = usage_item(key, at=timezone.now())
        usage_commit(user.account.pk, [item])
        bodies_keep(user.account.pk, item)
    with django_capture_on_commit_callbacks():  # never run: the broker was down
        body_retention_set(account=alice.account, store_bodies=False, retention_days=3)
    assert RequestBody.objects.count() == 2
    assert tasks.request_bodies_expire.delay().get() == 1
    assert [body.account_id for body in RequestBody.objects.all()] == [bob.account.pk]


# --- the switch against a settlement in flight ------------------------------------


def _keep_open(url: str, account_id: int, item: dict) -> psycopg.Connection:
    """Settle ``item``, then keep its bodies on a connection of its own and
    leave that transaction open (bodies being kept, not committed yet)."""
    usage_commit(account_id, [item])
    conn = psycopg.connect(url)
    conn.execute(KEEP_SQL, keep_params(account_id, item, b"{}", b"{}"))
    return conn


def _in_thread(job) -> threading.Thread:
    def run():
        try:
            job()
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_turning_off_beside_a_settlement_in_flight_leaves_no_body(alice):
    key = key_create(account=alice.account, name="race")
    url = database_url(connection.settings_dict)
    body_retention_set(account=alice.account, store_bodies=True, retention_days=3)

    # The bodies first: turning off waits for them, then deletes them.
    settling = _keep_open(url, alice.account.pk, usage_item(key, at=timezone.now()))
    try:
        off = _in_thread(
            lambda: body_retention_set(
                account=alice.account, store_bodies=False, retention_days=3
            )
        )
        off.join(0.5)
        assert off.is_alive()  # waiting for the settlement's lock on the switch
        settling.commit()
    finally:
        settling.close()  # rolls back what is not committed
    off.join(10)
    assert RequestLog.objects.count() == 1
    assert not RequestBody.objects.exists()

    # Turning off first: the settlement waits for it, then finds it off.
    body_retention_set(account=alice.account, store_bodies=True, retention_days=3)
    turned_off, may_commit, settled = (threading.Event() for _ in range(3))

    def turn_off_slowly():
        with transaction.atomic():
            body_retention_set(
                account=alice.account, store_bodies=False, retention_days=3
            )
            turned_off.set()
            may_commit.wait(10)

    item = usage_item(key, at=timezone.now())

    def settle():
        with _keep_open(url, alice.account.pk, item) as conn:
            conn.commit()
        settled.set()

    off = _in_thread(turn_off_slowly)
    try:
        assert turned_off.wait(10)
        settler = _in_thread(settle)
        assert not settled.wait(0.5)  # waiting for the switch's row
    finally:
        may_commit.set()
    off.join(10)
    settler.join(10)
    assert settled.is_set()
    assert RequestLog.objects.filter(pk=item["id"]).exists()
    assert not RequestBody.objects.exists()


@pytest.mark.django_db
def test_operators_see_how_much_an_account_keeps_never_what(alice, ops, client):
    body_retention_set(account=alice.account, store_bodies=True, retention_days=4)
    key = key_create(account=alice.account, name="k")
    item = usage_item(key, at=timezone.now())
    usage_commit(alice.account.pk, [item])
    bodies_keep(alice.account.pk, item, b'{"secret": "plans"}')
    client.force_login(ops)

    index = client.get("/admin/").content.decode()
    assert "/admin/proxy/usagerollup/" in index
    assert "/admin/proxy/bodyretention/" in index
    assert "requestbody" not in index
    assert client.get("/admin/proxy/requestbody/").status_code == 404
    switches = client.get("/admin/proxy/bodyretention/")
    assert switches.status_code == 200
    assert "alice@example.com" in switches.content.decode()
    assert ">1<" in switches.content.decode()  # one body kept
    for page in (
        switches,
        client.get(f"/admin/proxy/bodyretention/{alice.account.pk}/change/"),
        client.get("/admin/proxy/requestlog/"),
        client.get(f"/admin/proxy/requestlog/{item['id']}/change/"),
        client.get("/admin/proxy/usagerollup/"),
    ):
        assert page.status_code == 200
        assert b"secret" not in page.content
