"""Top-ups against localstripe with real signed webhooks: credited once, from
Stripe's word only; refunds and disputes take credits back."""

from __future__ import annotations

import json
import threading
import time

import pytest
import stripe
from django.test import Client
from rest_framework.test import APIClient

from billing.ledger.reconciliation import ledger_check
from billing.ledger.selectors import balance_get, breakdown_get
from billing.models import EntryKind, LedgerEntry, TopUp, TopUpStatus
from billing.payments.localstripe import PUBLISHABLE_KEY, SECRET_KEY, WEBHOOK_SECRET
from billing.payments.services import payments_reconcile, topup_refund
from invoices.models import Invoice
from money import usd_to_nanos
from tests.support.payments import CHARGE_FAILS, THREE_D_SECURE, with_profile

pytestmark = pytest.mark.django_db(transaction=True)


def api(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def top_up(user, amount: str, card) -> dict:
    """POST /api/v1/top-ups with a saved card; the answer's body."""
    response = api(user).post(
        "/api/v1/top-ups", {"amount": amount, "payment_method": card.id}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def credits_of(account) -> list[tuple[str, int]]:
    return sorted(
        LedgerEntry.objects.filter(
            account=account, kind__in=[EntryKind.TOPUP, EntryKind.BONUS]
        ).values_list("kind", "amount_nanos")
    )


def signed(payload: dict, *, secret: str = WEBHOOK_SECRET, timestamp=None) -> dict:
    body = json.dumps(payload)
    timestamp = int(timestamp or time.time())
    signature = stripe.WebhookSignature._compute_signature(
        f"{timestamp}.{body}", secret
    )
    return {"body": body, "header": f"t={timestamp},v1={signature}"}


def post_webhook(client: Client, event: dict):
    return client.post(
        "/stripe/webhook/",
        data=event["body"],
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=event["header"],
    )


def succeeded_event(payment_intent: str, topup: TopUp, event_id: str) -> dict:
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2020-08-27",
        "created": int(time.time()),
        "livemode": False,
        "type": "payment_intent.succeeded",
        "data": {
            "object": {
                "id": payment_intent,
                "object": "payment_intent",
                "amount": topup.amount_nanos // 10**7,
                "currency": "usd",
                "status": "succeeded",
                "metadata": {"topup": str(topup.pk)},
            }
        },
    }


def test_a_100_dollar_top_up_gives_120_of_credits_once_with_its_invoice(
    bob, card_save, stripe_webhooks
):
    with_profile(bob)
    card = card_save(bob.account)
    response = api(bob).post(
        "/api/v1/top-ups", {"amount": "100", "payment_method": card.id}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["amount"], body["bonus"], body["status"]) == (
        "100.000000000",
        "20.000000000",
        "succeeded",
    )
    topup = TopUp.objects.get()
    # The webhook arrives too, about a second later: it must not credit again.
    stripe_webhooks.wait_for(
        lambda: stripe_webhooks_received(topup.payment_intent_id), timeout=6
    )
    assert credits_of(bob.account) == [
        ("bonus", usd_to_nanos("20")),
        ("topup", usd_to_nanos("100")),
    ]
    balance = balance_get(account=bob.account)
    assert (balance.topup_nanos, balance.bonus_nanos) == (
        usd_to_nanos("100"),
        usd_to_nanos("20"),
    )
    invoice = Invoice.objects.get()
    topup.refresh_from_db()
    assert topup.invoice == invoice and invoice.total_nanos == usd_to_nanos("100")
    assert topup.method_label.endswith("4242)")
    assert ledger_check() == []


def authenticate_3ds(localstripe, client_secret: str) -> None:
    """What Stripe.js's confirmCardPayment does once the customer passed 3-D
    Secure with their bank."""
    import urllib.request

    payment_intent = client_secret.split("_secret_")[0]
    request = urllib.request.Request(  # noqa: S310 - the local Stripe
        f"{localstripe.api_base}/v1/payment_intents/{payment_intent}"
        "/_authenticate?success=true",
        data=json.dumps(
            {"key": PUBLISHABLE_KEY, "client_secret": client_secret}
        ).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200


def stripe_webhooks_received(payment_intent_id: str) -> bool:
    from djstripe.models import Event

    return Event.objects.filter(type="payment_intent.succeeded").exists()


def test_a_3d_secure_top_up_is_credited_by_the_webhook(bob, card_save, stripe_webhooks):
    with_profile(bob)
    card = card_save(bob.account, THREE_D_SECURE)
    body = top_up(bob, "50", card)
    assert body["status"] == "requires_action"
    assert credits_of(bob.account) == []
    # Stripe.js finishes 3-D Secure in the browser; localstripe's own endpoint
    # does what the customer's bank would.
    authenticate_3ds(stripe_webhooks.localstripe, body["client_secret"])
    assert stripe_webhooks.wait_for(lambda: credits_of(bob.account), timeout=8)
    assert credits_of(bob.account) == [
        ("bonus", usd_to_nanos("10")),
        ("topup", usd_to_nanos("50")),
    ]
    assert TopUp.objects.get().status == TopUpStatus.SUCCEEDED


def test_a_declined_card_credits_nothing(bob, card_save, stripe_settings):
    with_profile(bob)
    card = card_save(bob.account, CHARGE_FAILS)
    response = api(bob).post(
        "/api/v1/top-ups", {"amount": "20", "payment_method": card.id}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["status"] == TopUpStatus.FAILED
    assert response.json()["failure_message"]
    assert credits_of(bob.account) == []
    assert not Invoice.objects.exists()


def test_a_top_up_needs_a_billing_profile_and_a_sane_amount(bob, stripe_settings):
    client = api(bob)
    response = client.post("/api/v1/top-ups", {"amount": "100"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "billing_profile_required"
    with_profile(bob)
    for amount, message in [
        ("4.99", "between $5.00 and $25,000.00"),
        ("25000.01", "between"),
        ("10.001", "whole cents"),
        (10.5, "decimal strings"),
    ]:
        response = client.post("/api/v1/top-ups", {"amount": amount}, format="json")
        assert response.status_code == 400
        assert message in json.dumps(response.json()), response.json()
    assert not TopUp.objects.exists()


def test_without_stripe_keys_top_ups_say_payments_are_not_configured(bob, settings):
    with_profile(bob)
    settings.STRIPE_SECRET_KEY = ""
    response = api(bob).post("/api/v1/top-ups", {"amount": "100"}, format="json")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "payments_not_configured"


def test_the_same_webhook_three_times_and_ten_at_once_credits_once(
    bob, card_save, stripe_settings, live_server
):
    with_profile(bob)
    card = card_save(bob.account, THREE_D_SECURE)
    body = top_up(bob, "100", card)
    topup = TopUp.objects.get()
    event = signed(succeeded_event(body["payment_intent"], topup, "evt_dup_1"))
    client = Client()
    for _ in range(3):
        assert post_webhook(client, event).status_code == 200
    assert len(credits_of(bob.account)) == 2

    # Another event for the same payment (Stripe may send one twice with new
    # ids), ten deliveries at once through the live server.
    import urllib.request

    concurrent = signed(succeeded_event(body["payment_intent"], topup, "evt_dup_2"))
    statuses = []

    def deliver():
        request = urllib.request.Request(  # noqa: S310
            live_server.url + "/stripe/webhook/",
            data=concurrent["body"].encode(),
            headers={
                "Content-Type": "application/json",
                "Stripe-Signature": concurrent["header"],
            },
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310
            statuses.append(response.status)

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 10
    assert credits_of(bob.account) == [
        ("bonus", usd_to_nanos("20")),
        ("topup", usd_to_nanos("100")),
    ]
    assert Invoice.objects.count() == 1
    assert ledger_check() == []


@pytest.mark.parametrize("tamper", ["body", "signature", "none", "stale", "secret"])
def test_a_tampered_unsigned_or_stale_webhook_is_400_and_credits_nothing(
    bob, card_save, stripe_settings, tamper
):
    with_profile(bob)
    card = card_save(bob.account, THREE_D_SECURE)
    body = top_up(bob, "100", card)
    topup = TopUp.objects.get()
    payload = succeeded_event(body["payment_intent"], topup, "evt_bad")
    event = signed(
        payload,
        secret="whsec_wrong" if tamper == "secret" else WEBHOOK_SECRET,
        timestamp=time.time() - 301 if tamper == "stale" else None,
    )
    if tamper == "body":
        event["body"] = event["body"].replace('"amount": 10000', '"amount": 1000000')
    if tamper == "signature":
        event["header"] = event["header"][:-4] + "0000"
    client = Client()
    if tamper == "none":
        response = client.post(
            "/stripe/webhook/", data=event["body"], content_type="application/json"
        )
    else:
        response = post_webhook(client, event)
    assert response.status_code == 400
    assert credits_of(bob.account) == []


def test_reconciliation_credits_a_payment_whose_webhook_was_lost(
    bob, card_save, stripe_settings, localstripe
):
    with_profile(bob)
    card = card_save(bob.account, THREE_D_SECURE)
    body = top_up(bob, "30", card)
    authenticate_3ds(localstripe, body["client_secret"])
    # No webhook endpoint is registered here: the event is lost.
    assert credits_of(bob.account) == []
    report = payments_reconcile()
    assert report["repaired"] == 1
    assert len(credits_of(bob.account)) == 2
    assert payments_reconcile()["repaired"] == 0
    assert len(credits_of(bob.account)) == 2


def _spend(account, usd: str):
    from billing.ledger.debits import balance_debit

    balance_debit(account=account, amount_nanos=usd_to_nanos(usd), idempotency_key=usd)


def test_a_refund_takes_back_what_remains_and_the_bonus_on_it(
    bob, ops, card_save, stripe_settings
):
    with_profile(bob)
    card = card_save(bob.account)
    top_up(bob, "100", card)
    topup = TopUp.objects.get()
    _spend(bob.account, "30")  # $20 of bonus first, then $10 of the top-up
    with pytest.raises(Exception, match=r"at most \$90.00"):
        topup_refund(
            topup=topup, amount_nanos=usd_to_nanos("90.01"), reason="x", actor=ops
        )
    topup_refund(
        topup=topup, amount_nanos=usd_to_nanos("50"), reason="asked", actor=ops
    )
    balance = balance_get(account=bob.account)
    # $50 taken from the top-up's lot; its bonus was already spent.
    assert (balance.topup_nanos, balance.bonus_nanos) == (usd_to_nanos("40"), 0)
    refund = LedgerEntry.objects.get(kind=EntryKind.REFUND)
    assert refund.amount_nanos == -usd_to_nanos("50") and refund.actor == ops
    assert breakdown_get(account=bob.account)["refunds"] == -usd_to_nanos("50")
    assert TopUp.objects.get().refunded_nanos == usd_to_nanos("50")
    # What remains can still be refunded, not more.
    topup_refund(
        topup=TopUp.objects.get(),
        amount_nanos=usd_to_nanos("40"),
        reason="rest",
        actor=ops,
    )
    assert balance_get(account=bob.account).total_nanos == 0
    assert ledger_check() == []


def test_a_full_refund_before_spending_forfeits_the_whole_bonus(
    bob, ops, card_save, stripe_settings, client
):
    with_profile(bob)
    card = card_save(bob.account)
    top_up(bob, "100", card)
    topup = TopUp.objects.get()
    client.force_login(ops)
    page = client.get(f"/admin/billing/topup/{topup.pk}/refund/")
    assert b"$100.00" in page.content
    response = client.post(
        f"/admin/billing/topup/{topup.pk}/refund/", {"amount": "100", "reason": "oops"}
    )
    assert response.status_code == 302
    assert balance_get(account=bob.account).total_nanos == 0
    assert ledger_check() == []


def test_a_dispute_takes_back_credits_and_pauses_auto_top_up(
    bob, card_save, stripe_settings
):
    from billing.models import AutoTopUp

    with_profile(bob)
    card = card_save(bob.account)
    top_up(bob, "100", card)
    AutoTopUp.objects.create(
        account=bob.account, enabled=True, payment_method_id=card.id
    )
    topup = TopUp.objects.get()
    _spend(bob.account, "70")  # bonus $20, then $50 of the top-up: $50 remain
    event = signed(
        {
            "id": "evt_dispute_1",
            "object": "event",
            "api_version": "2020-08-27",
            "created": int(time.time()),
            "livemode": False,
            "type": "charge.dispute.created",
            "data": {
                "object": {
                    "id": "dp_test_1",
                    "object": "dispute",
                    "amount": 10000,
                    "currency": "usd",
                    "payment_intent": topup.payment_intent_id,
                    "status": "needs_response",
                }
            },
        }
    )
    assert post_webhook(Client(), event).status_code == 200
    assert post_webhook(Client(), event).status_code == 200  # redelivered
    dispute = LedgerEntry.objects.get(kind=EntryKind.DISPUTE)
    assert dispute.amount_nanos == -usd_to_nanos("50")
    assert "already spent" in dispute.description
    assert balance_get(account=bob.account).total_nanos == 0
    assert AutoTopUp.objects.get().paused_at is not None
    assert TopUp.objects.get().disputed
    assert ledger_check() == []


# --- a payment for another amount: recorded, not credited, operators told --------


def mismatch_payload(topup: TopUp, payment_intent: str, **fields) -> dict:
    payload = succeeded_event(payment_intent, topup, "evt_mismatch_1")
    payload["data"]["object"].update(fields)
    return payload


@pytest.mark.parametrize(
    ("amount", "currency"),
    [(1_000_000, "usd"), (10_000, "eur")],
    ids=["amount", "currency"],
)
def test_a_payment_for_another_amount_credits_nothing_and_is_put_before_operators(
    bob, ops, card_save, stripe_settings, client, amount, currency
):
    from django.core import mail

    from billing.models import PaymentMismatch

    with_profile(bob)
    card = card_save(bob.account, THREE_D_SECURE)
    body = top_up(bob, "100", card)  # waits for 3-D Secure: nothing credited yet
    topup = TopUp.objects.get()
    payload = mismatch_payload(
        topup, body["payment_intent"], amount=amount, currency=currency
    )
    assert post_webhook(Client(), signed(payload)).status_code == 200
    # Delivered again, and as another event: still one record, one email.
    assert post_webhook(Client(), signed(payload)).status_code == 200
    payload["id"] = "evt_mismatch_2"
    assert post_webhook(Client(), signed(payload)).status_code == 200

    assert credits_of(bob.account) == []
    assert balance_get(account=bob.account).total_nanos == 0
    topup.refresh_from_db()
    assert topup.status == TopUpStatus.MISMATCH
    assert Invoice.objects.count() == 0
    mismatch = PaymentMismatch.objects.get()
    assert (
        mismatch.topup_id,
        mismatch.payment_intent_id,
        mismatch.expected_cents,
        mismatch.expected_currency,
        mismatch.paid_cents,
        mismatch.paid_currency,
        mismatch.resolved,
    ) == (topup.pk, body["payment_intent"], 10_000, "usd", amount, currency, False)
    assert [message.to for message in mail.outbox] == [[ops.email]]
    assert body["payment_intent"] in mail.outbox[0].body
    # The customer's page asks again: still nothing credited.
    detail = api(bob).get(f"/api/v1/top-ups/{topup.pk}").json()
    assert detail["status"] == "mismatch"
    assert "nothing was credited" in detail["failure_message"]
    assert payments_reconcile()["repaired"] == 0
    assert credits_of(bob.account) == []
    # Operators find it in admin, and mark it resolved with a note.
    client.force_login(ops)
    listing = client.get("/admin/billing/paymentmismatch/")
    assert body["payment_intent"].encode() in listing.content
    resolved = client.post(
        f"/admin/billing/paymentmismatch/{mismatch.pk}/change/",
        {"resolved": "on", "note": "refunded in Stripe"},
    )
    assert resolved.status_code == 302
    mismatch.refresh_from_db()
    assert mismatch.resolved and mismatch.note == "refunded in Stripe"
    assert mismatch.paid_cents == amount  # what arrived is not editable
    assert ledger_check() == []


# --- refunds made in Stripe's dashboard, and disputes closed -----------------------


def charge_event(event_type: str, event_id: str, obj: dict) -> dict:
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2020-08-27",
        "created": int(time.time()),
        "livemode": False,
        "type": event_type,
        "data": {"object": obj},
    }


def refunded_event(topup: TopUp, event_id: str, refunds: list | None) -> dict:
    charge = {
        "id": "ch_test_1",
        "object": "charge",
        "amount": topup.amount_nanos // 10**7,
        "currency": "usd",
        "payment_intent": topup.payment_intent_id,
        "refunded": False,
    }
    if refunds is not None:
        charge["amount_refunded"] = sum(r.amount for r in refunds)
        charge["refunds"] = {
            "object": "list",
            "has_more": False,
            "data": [
                {
                    "id": r.id,
                    "object": "refund",
                    "amount": r.amount,
                    "currency": "usd",
                    "status": r.status,
                }
                for r in refunds
            ],
        }
    return charge_event("charge.refunded", event_id, charge)


def dashboard_refund(topup: TopUp, usd: str):
    """A refund made in Stripe's dashboard: Stripe knows it, we do not."""
    return stripe.Refund.create(
        api_key=SECRET_KEY,
        payment_intent=topup.payment_intent_id,
        amount=usd_to_nanos(usd) // 10**7,
    )


def balances(account) -> tuple[int, int]:
    balance = balance_get(account=account)
    return balance.topup_nanos, balance.bonus_nanos


def test_a_refund_made_in_stripe_takes_back_credits_once_by_refund_id(
    bob, ops, card_save, stripe_settings
):
    from billing.models import TopUpRefund

    with_profile(bob)
    card = card_save(bob.account)
    top_up(bob, "100", card)
    topup = TopUp.objects.get()
    _spend(bob.account, "30")  # the $20 bonus, then $10 of the top-up
    first = dashboard_refund(topup, "50")

    event = signed(refunded_event(topup, "evt_refund_1", [first]))
    assert post_webhook(Client(), event).status_code == 200
    assert balances(bob.account) == (usd_to_nanos("40"), 0)
    assert post_webhook(Client(), event).status_code == 200  # redelivered
    again = signed(refunded_event(topup, "evt_refund_2", [first]))
    assert post_webhook(Client(), again).status_code == 200  # another event
    assert balances(bob.account) == (usd_to_nanos("40"), 0)
    assert TopUp.objects.get().refunded_nanos == usd_to_nanos("50")

    # An operator refunds here; Stripe then lists that refund too: taken once.
    topup_refund(
        topup=TopUp.objects.get(),
        amount_nanos=usd_to_nanos("10"),
        reason="asked",
        actor=ops,
    )
    mine = TopUpRefund.objects.get(actor=ops)
    assert balances(bob.account) == (usd_to_nanos("30"), 0)
    both = signed(
        refunded_event(
            topup,
            "evt_refund_3",
            [first, stripe.Refund.retrieve(mine.stripe_refund_id, api_key=SECRET_KEY)],
        )
    )
    assert post_webhook(Client(), both).status_code == 200
    assert balances(bob.account) == (usd_to_nanos("30"), 0)

    # The rest refunded in Stripe: $40, of which $30 of credits remain.
    last = dashboard_refund(topup, "40")
    listed = [
        first,
        stripe.Refund.retrieve(mine.stripe_refund_id, api_key=SECRET_KEY),
        last,
    ]
    everything = signed(refunded_event(topup, "evt_refund_4", listed))
    assert post_webhook(Client(), everything).status_code == 200
    assert balances(bob.account) == (0, 0)
    topup.refresh_from_db()
    assert topup.refunded_nanos == usd_to_nanos("100")
    assert sorted(
        TopUpRefund.objects.values_list("amount_nanos", "actor_id")
    ) == sorted(
        [
            (usd_to_nanos("50"), None),
            (usd_to_nanos("10"), ops.pk),
            (usd_to_nanos("40"), None),
        ]
    )
    refunds = LedgerEntry.objects.filter(kind=EntryKind.REFUND).order_by("id")
    assert [entry.amount_nanos for entry in refunds] == [
        -usd_to_nanos("50"),
        -usd_to_nanos("10"),
        -usd_to_nanos("30"),
    ]
    assert "made in Stripe" in refunds[0].description
    assert ledger_check() == []


def test_a_charge_that_does_not_list_its_refunds_is_read_back_from_stripe(
    bob, card_save, stripe_settings
):
    with_profile(bob)
    card = card_save(bob.account)
    top_up(bob, "100", card)
    topup = TopUp.objects.get()
    dashboard_refund(topup, "25")
    event = signed(refunded_event(topup, "evt_refund_unlisted", None))
    assert post_webhook(Client(), event).status_code == 200
    # $25 of the top-up and the $5 of bonus on it.
    assert balances(bob.account) == (usd_to_nanos("75"), usd_to_nanos("15"))
    assert ledger_check() == []


def dispute_event(topup: TopUp, event_id: str, *, closed: bool, status: str):
    return signed(
        charge_event(
            "charge.dispute.closed" if closed else "charge.dispute.created",
            event_id,
            {
                "id": "dp_test_1",
                "object": "dispute",
                "amount": topup.amount_nanos // 10**7,
                "currency": "usd",
                "payment_intent": topup.payment_intent_id,
                "status": status,
            },
        )
    )


def disputed_top_up(user, card_save) -> TopUp:
    """A $100 top-up of which $10 of bonus was spent."""
    with_profile(user)
    top_up(user, "100", card_save(user.account))
    _spend(user.account, "10")
    return TopUp.objects.get()


def test_a_dispute_won_gives_back_what_it_took_once(bob, card_save, stripe_settings):
    topup = disputed_top_up(bob, card_save)
    opened = dispute_event(topup, "evt_dp_1", closed=False, status="needs_response")
    assert post_webhook(Client(), opened).status_code == 200
    assert balances(bob.account) == (0, 0)
    won = dispute_event(topup, "evt_dp_2", closed=True, status="won")
    assert post_webhook(Client(), won).status_code == 200
    assert balances(bob.account) == (usd_to_nanos("100"), usd_to_nanos("10"))
    # The same outcome again, as another event, and a late "opened": no change.
    won_again = dispute_event(topup, "evt_dp_3", closed=True, status="won")
    assert post_webhook(Client(), won_again).status_code == 200
    late = dispute_event(topup, "evt_dp_4", closed=False, status="needs_response")
    assert post_webhook(Client(), late).status_code == 200
    assert balances(bob.account) == (usd_to_nanos("100"), usd_to_nanos("10"))
    entries = LedgerEntry.objects.filter(kind=EntryKind.DISPUTE).order_by("id")
    assert [entry.amount_nanos for entry in entries] == [
        -usd_to_nanos("110"),
        usd_to_nanos("110"),
    ]
    assert entries[1].reverses_id == entries[0].pk
    assert ledger_check() == []


def test_a_dispute_lost_gives_nothing_back(bob, card_save, stripe_settings):
    topup = disputed_top_up(bob, card_save)
    opened = dispute_event(topup, "evt_dp_1", closed=False, status="needs_response")
    assert post_webhook(Client(), opened).status_code == 200
    lost = dispute_event(topup, "evt_dp_2", closed=True, status="lost")
    assert post_webhook(Client(), lost).status_code == 200
    assert balances(bob.account) == (0, 0)
    assert LedgerEntry.objects.filter(kind=EntryKind.DISPUTE).count() == 1
    assert ledger_check() == []


@pytest.mark.parametrize(
    ("outcome", "left"), [("won", ("100", "10")), ("lost", ("0", "0"))]
)
def test_a_dispute_closed_before_it_was_heard_of_ends_the_same(
    bob, card_save, stripe_settings, outcome, left
):
    topup = disputed_top_up(bob, card_save)
    closed = dispute_event(topup, "evt_dp_1", closed=True, status=outcome)
    assert post_webhook(Client(), closed).status_code == 200
    opened = dispute_event(topup, "evt_dp_2", closed=False, status="needs_response")
    assert post_webhook(Client(), opened).status_code == 200
    assert balances(bob.account) == tuple(usd_to_nanos(usd) for usd in left)
    assert ledger_check() == []


# --- where Stripe may send the customer back ---------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/console/",
        "//evil.example/console/",
        "javascript:alert(1)",
        "http://127.0.0.1:8000@evil.example/",
        "http://127.0.0.1:8000\\@evil.example/",
        "http://127.0.0.1:8001/console/",
        "https://127.0.0.1:8000/console/",
        "http://127.0.0.1.evil.example:8000/",
        "http://127.0.0.1:8000/con\nsole/",
        "/console/top-ups/1/return",
    ],
)
def test_a_return_url_that_is_not_this_site_is_refused(
    bob, stripe_settings, settings, url
):
    settings.SITE_URL = "http://127.0.0.1:8000"
    with_profile(bob)
    response = api(bob).post(
        "/api/v1/top-ups",
        {"amount": "100", "method": "alipay", "return_url": url},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "return_url" in response.content.decode()
    assert TopUp.objects.count() == 0


def test_a_return_url_on_this_site_is_accepted(
    bob, card_save, stripe_settings, settings
):
    settings.SITE_URL = "http://127.0.0.1:8000/"
    with_profile(bob)
    card = card_save(bob.account)
    response = api(bob).post(
        "/api/v1/top-ups",
        {
            "amount": "100",
            "payment_method": card.id,
            "return_url": "http://127.0.0.1:8000/console/top-ups/1/return?x=1",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
