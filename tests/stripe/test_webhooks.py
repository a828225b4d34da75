"""POST /stripe/webhook/: signed events, handled once."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest
import stripe
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.urls import reverse
from djstripe import models as djstripe

from billing.payments import stripe_gateway as gateway
from billing.payments import webhooks
from billing.payments.localstripe import WEBHOOK_SECRET

TEST_EVENT = "agipower.test_event"
URL = "/stripe/webhook/"


def event_payload(event_type: str = TEST_EVENT, **object_fields) -> str:
    return json.dumps(
        {
            "id": f"evt_test{uuid.uuid4().hex[:20]}",
            "object": "event",
            "type": event_type,
            "api_version": "2017-08-15",
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "request": None,
            "data": {"object": {"id": "thing_1", "object": "thing", **object_fields}},
        }
    )


def signature(payload: str, *, secret: str = WEBHOOK_SECRET, age: int = 0) -> str:
    return stripe.WebhookSignature.generate_signature_header(
        payload, secret, timestamp=int(time.time()) - age
    )


def rows() -> dict[str, int]:
    """How many rows each table of the project has (dj-stripe's included)."""
    return {model._meta.label: model.objects.count() for model in apps.get_models()}


class Recorder:
    """A handler that counts its committed runs, and can be told to fail."""

    def __init__(self):
        self.committed: list[str] = []
        self.fail_next = 0
        self.delay = 0.0
        self._lock = threading.Lock()

    def __call__(self, event: dict) -> None:
        time.sleep(self.delay)
        with self._lock:
            if self.fail_next:
                self.fail_next -= 1
                raise RuntimeError("the handler failed")
        transaction.on_commit(lambda: self.committed.append(event["id"]))

    def ids(self) -> list[str]:
        with self._lock:
            return list(self.committed)


@pytest.fixture
def recorder(monkeypatch):
    webhooks.handlers_load()  # so that billing.payments' handlers stay put
    handler = Recorder()
    monkeypatch.setitem(webhooks.EVENT_HANDLERS, TEST_EVENT, handler)
    return handler


def post(client, payload: str, header: str | None):
    extra = {"HTTP_STRIPE_SIGNATURE": header} if header is not None else {}
    return client.post(URL, data=payload, content_type="application/json", **extra)


def test_route_is_named():
    assert reverse("stripe-webhook") == URL


def test_get_is_not_allowed(client):
    assert client.get(URL).status_code == 405


# --- refused: nothing written ---------------------------------------------------


def _tampered(payload):
    header = signature(payload)
    return payload.replace('"livemode": false', '"livemode": true'), header


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(_tampered, id="tampered body"),
        pytest.param(
            lambda p: (p, signature(p, secret="whsec_other")), id="wrong secret"
        ),
        pytest.param(lambda p: (p, None), id="no signature"),
        pytest.param(lambda p: (p, ""), id="empty signature"),
        pytest.param(lambda p: (p, "t=abc,v1=zzz"), id="garbage signature"),
        pytest.param(lambda p: (p, signature(p, age=301)), id="stale timestamp"),
        pytest.param(lambda p: (p, signature(p, age=-310)), id="future timestamp"),
        pytest.param(
            lambda p: (p, signature(p, age=-86_400 * 365)), id="next year's timestamp"
        ),
        pytest.param(lambda p: ("not json", signature("not json")), id="not an event"),
    ],
)
def test_bad_signature_is_refused_and_writes_nothing(
    make, db, client, stripe_settings, recorder
):
    payload, header = make(event_payload())
    before = rows()

    response = post(client, payload, header)

    assert response.status_code == 400
    assert rows() == before
    assert djstripe.WebhookEventTrigger.objects.count() == 0
    assert recorder.ids() == []


def test_unconfigured_webhook_secret_refuses_everything(
    db, client, stripe_settings, recorder
):
    payload = event_payload()
    header = signature(payload)
    stripe_settings.STRIPE_WEBHOOK_SECRET = ""
    before = rows()

    assert post(client, payload, header).status_code == 400
    assert rows() == before


def test_signature_just_within_tolerance_is_accepted(
    db, client, stripe_settings, recorder, django_capture_on_commit_callbacks
):
    payload = event_payload()
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, payload, signature(payload, age=290))
    assert response.status_code == 200
    assert recorder.ids() == [json.loads(payload)["id"]]


def test_signature_a_little_ahead_of_our_clock_is_accepted(
    db, client, stripe_settings, recorder, django_capture_on_commit_callbacks
):
    payload = event_payload()
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, payload, signature(payload, age=-290))
    assert response.status_code == 200
    assert recorder.ids() == [json.loads(payload)["id"]]


# --- handled once ---------------------------------------------------------------


def test_failed_handler_rolls_back_then_redelivery_is_handled_once(
    db, client, stripe_settings, recorder, django_capture_on_commit_callbacks
):
    payload = event_payload()
    event_id = json.loads(payload)["id"]
    recorder.fail_next = 1
    before = rows()

    with django_capture_on_commit_callbacks(execute=True):
        failed = post(client, payload, signature(payload))
    assert failed.status_code == 500
    assert rows() == before  # not even dj-stripe's record of the event
    assert recorder.ids() == []

    # Stripe's redelivery (or the same signed body posted again).
    with django_capture_on_commit_callbacks(execute=True):
        redelivered = post(client, payload, signature(payload))
    assert redelivered.status_code == 200
    assert redelivered.json() == {"received": True, "duplicate": False}
    assert recorder.ids() == [event_id]
    assert djstripe.Event.objects.filter(id=event_id).count() == 1
    trigger = djstripe.WebhookEventTrigger.objects.get()
    assert (trigger.valid, trigger.processed, trigger.event_id) == (
        True,
        True,
        event_id,
    )


def test_same_event_three_times_in_a_row_is_handled_once(
    db, client, stripe_settings, recorder, django_capture_on_commit_callbacks
):
    payload = event_payload()
    header = signature(payload)

    with django_capture_on_commit_callbacks(execute=True):
        answers = [post(client, payload, header) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["duplicate"] for a in answers] == [False, True, True]
    assert recorder.ids() == [json.loads(payload)["id"]]
    assert djstripe.Event.objects.count() == 1
    assert djstripe.WebhookEventTrigger.objects.count() == 1


def test_event_nobody_handles_is_recorded(
    db, client, stripe_settings, django_capture_on_commit_callbacks
):
    payload = event_payload("agipower.nobody_listens")
    response = post(client, payload, signature(payload))
    assert response.status_code == 200
    assert djstripe.Event.objects.get().type == "agipower.nobody_listens"


@pytest.mark.django_db(transaction=True)
def test_same_event_ten_times_at_once_is_handled_once(
    live_server, stripe_settings, recorder
):
    recorder.delay = 0.2  # the deliveries overlap while the first is handled
    payload = event_payload()
    header = signature(payload)
    barrier = threading.Barrier(10)
    statuses: list[int] = []

    def deliver():
        request = urllib.request.Request(  # noqa: S310
            live_server.url + URL,
            data=payload.encode(),
            headers={"Content-Type": "application/json", "Stripe-Signature": header},
            method="POST",
        )
        barrier.wait()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                statuses.append(response.status)
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert statuses == [200] * 10
    assert recorder.ids() == [json.loads(payload)["id"]]
    assert djstripe.Event.objects.count() == 1
    assert djstripe.WebhookEventTrigger.objects.count() == 1


# --- from localstripe -------------------------------------------------------------


def test_signed_event_from_localstripe_reaches_its_handler(
    stripe_webhooks, card_save, alice, monkeypatch
):
    webhooks.handlers_load()
    customers: list[str] = []
    payments = Recorder()

    @webhooks.webhook_handler("customer.created")
    def on_customer_created(event: dict) -> None:
        customers.append(event["data"]["object"]["id"])

    try:
        monkeypatch.setitem(
            webhooks.EVENT_HANDLERS, "payment_intent.succeeded", payments
        )
        card = card_save(alice.account)
        paid = gateway.payment_intent_create(
            account=alice.account,
            amount_cents=1_500,
            method="card",
            payment_method_id=card.id,
            confirm=True,
            idempotency_key="webhook-test",
            metadata={},
        )
        assert paid.status == "succeeded"

        assert stripe_webhooks.wait_for(lambda: customers)
        assert stripe_webhooks.wait_for(lambda: payments.ids())
    finally:
        webhooks.EVENT_HANDLERS.pop("customer.created", None)

    assert customers == [gateway.customer_id_for(account=alice.account)]
    [event_id] = payments.ids()
    event = djstripe.Event.objects.get(id=event_id)
    assert event.type == "payment_intent.succeeded"
    assert event.data["object"]["id"] == paid.id
    trigger = djstripe.WebhookEventTrigger.objects.get(event=event)
    assert trigger.valid and trigger.processed
    assert "Stripe-Signature" in trigger.headers
    # dj-stripe mirrored the payment from the event too.
    mirrored = djstripe.PaymentIntent.objects.get(id=paid.id)
    assert mirrored.stripe_data["status"] == "succeeded"


def test_handler_registry_takes_one_handler_per_type():
    def first(event):
        pass

    def second(event):
        pass

    try:
        assert webhooks.webhook_handler("agipower.registry_test")(first) is first
        # The same function again (a module imported twice) is fine.
        webhooks.webhook_handler("agipower.registry_test")(first)
        with pytest.raises(ImproperlyConfigured, match="already handled"):
            webhooks.webhook_handler("agipower.registry_test")(second)
        assert webhooks.EVENT_HANDLERS["agipower.registry_test"] is first
    finally:
        webhooks.EVENT_HANDLERS.pop("agipower.registry_test", None)


def test_dj_stripe_mirrors_what_localstripe_sends(
    stripe_webhooks, card_save, alice, monkeypatch, caplog
):
    webhooks.handlers_load()
    for event_type in ("payment_intent.succeeded", "payment_intent.payment_failed"):
        monkeypatch.setitem(webhooks.EVENT_HANDLERS, event_type, Recorder())
    account = alice.account
    good = card_save(account)  # customer.created, then customer.updated
    bad = gateway.card_attach(
        account=account, payment_method_id="pm_card_chargeCustomerFail"
    )
    paid, declined = (
        gateway.payment_intent_create(
            account=account,
            amount_cents=1_000,
            method="card",
            payment_method_id=card.id,
            confirm=True,
            off_session=True,
            idempotency_key=f"mirror-{card.id}",
            metadata={},
        )
        for card in (good, bad)
    )
    expected = {
        "customer.created",
        "customer.updated",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
    }

    def types():
        return set(djstripe.Event.objects.values_list("type", flat=True))

    assert stripe_webhooks.wait_for(lambda: expected <= types()), types()
    stripe_webhooks.localstripe.deliveries_wait()
    assert [
        r.getMessage() for r in caplog.records if r.name == "billing.payments.webhooks"
    ] == []
    assert djstripe.WebhookEventTrigger.objects.filter(processed=True).count() == (
        djstripe.Event.objects.count()
    )
    mirrored = {
        pi.id: pi.stripe_data["status"] for pi in djstripe.PaymentIntent.objects.all()
    }
    assert mirrored == {
        paid.id: "succeeded",
        declined.id: "requires_payment_method",
    }
    customer = djstripe.Customer.objects.get(subscriber=account)
    assert customer.default_payment_method.id == good.id
