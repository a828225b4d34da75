"""Self-service refunds of a fresh top-up against localstripe, through the
signed webhook: the credits are taken once when asked for (the fee's too, and
the bonus is forfeited), given back once if Stripe's refund fails, and the
refund is refused with its reason when it may not be made."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
import stripe
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from billing.ledger.debits import balance_debit
from billing.ledger.grants import credit_grant
from billing.ledger.holds import hold_place
from billing.ledger.reconciliation import ledger_check
from billing.ledger.selectors import balance_get
from billing.models import (
    AutoTopUp,
    EntryKind,
    LedgerEntry,
    LotSource,
    Pool,
    SelfRefund,
    SelfRefundStatus,
    TopUp,
)
from billing.payments.localstripe import SECRET_KEY, WEBHOOK_SECRET
from billing.payments.self_refunds import self_refunds_resolve
from money import usd_to_nanos
from tests.support.ledger import counts
from tests.support.payments import with_profile
from tests.support.threads import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


def api(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def paid_top_up(user, card_save, amount: str = "100") -> TopUp:
    """A top-up paid with a saved card and credited (amount + 20% bonus)."""
    with_profile(user)
    card = card_save(user.account)
    response = api(user).post(
        "/api/v1/top-ups", {"amount": amount, "payment_method": card.id}, format="json"
    )
    assert response.status_code == 201, response.content
    topup = TopUp.objects.get(pk=response.json()["id"])
    assert topup.entry_id is not None
    return topup


def ask_refund(user, topup: TopUp):
    return api(user).post(f"/api/v1/top-ups/{topup.pk}/refund")


def balances(account) -> tuple[int, int]:
    balance = balance_get(account=account)
    return balance.topup_nanos, balance.bonus_nanos


def spend(account, usd: str, key: str = "usage") -> None:
    balance_debit(account=account, amount_nanos=usd_to_nanos(usd), idempotency_key=key)


def signed(payload: dict) -> dict:
    body = json.dumps(payload)
    timestamp = int(time.time())
    signature = stripe.WebhookSignature._compute_signature(
        f"{timestamp}.{body}", WEBHOOK_SECRET
    )
    return {"body": body, "header": f"t={timestamp},v1={signature}"}


def post_webhook(event: dict):
    return Client().post(
        "/stripe/webhook/",
        data=event["body"],
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=event["header"],
    )


def event(event_type: str, event_id: str, obj: dict) -> dict:
    return signed(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2020-08-27",
            "created": int(time.time()),
            "livemode": False,
            "type": event_type,
            "data": {"object": obj},
        }
    )


def refund_object(refund_id: str, *, status: str | None = None) -> dict:
    """Stripe's refund as localstripe has it, its status as given."""
    refund = stripe.Refund.retrieve(refund_id, api_key=SECRET_KEY)
    return {
        "id": refund.id,
        "object": "refund",
        "amount": refund.amount,
        "currency": "usd",
        "payment_intent": refund.payment_intent,
        "metadata": dict(refund.metadata),
        "status": status or refund.status,
    }


def charge_refunded(topup: TopUp, event_id: str, refunds: list[dict]) -> dict:
    return event(
        "charge.refunded",
        event_id,
        {
            "id": "ch_test_1",
            "object": "charge",
            "amount": topup.amount_nanos // 10**7,
            "currency": "usd",
            "payment_intent": topup.payment_intent_id,
            "amount_refunded": sum(r["amount"] for r in refunds),
            "refunds": {"object": "list", "has_more": False, "data": refunds},
        },
    )


def test_a_fresh_top_up_is_refunding_then_refunded_by_the_signed_webhook(
    bob, card_save, stripe_settings
):
    topup = paid_top_up(bob, card_save)
    assert balances(bob.account) == (usd_to_nanos("100"), usd_to_nanos("20"))

    response = ask_refund(bob, topup)

    assert response.status_code == 201, response.content
    body = response.json()
    refund = SelfRefund.objects.get()
    assert body == {
        "id": refund.pk,
        "status": "refunding",
        "amount": "95.000000000",
        "fee": "5.000000000",
        "top_up": topup.pk,
        "failure_message": "",
        "created_at": body["created_at"],
    }
    # The whole refundable leaves the top-up's credits (the fee's too) and
    # the bonus on it is forfeited, in one entry.
    assert balances(bob.account) == (0, 0)
    entry = LedgerEntry.objects.get(kind=EntryKind.REFUND)
    assert entry.amount_nanos == -usd_to_nanos("120")
    assert (entry.topup_delta_nanos, entry.bonus_delta_nanos) == (
        -usd_to_nanos("100"),
        -usd_to_nanos("20"),
    )
    assert refund.entry == entry and refund.stripe_refund_id
    topup.refresh_from_db()
    assert topup.refunded_nanos == usd_to_nanos("95")
    # Stripe paid back $95.00, once.
    listed = stripe.Refund.list(
        payment_intent=topup.payment_intent_id, api_key=SECRET_KEY
    )
    assert [r.amount for r in listed.data] == [9500]
    assert listed.data[0].metadata["self_refund"] == str(refund.pk)

    # Stripe's webhook says it went through: refunded; the credits stay taken.
    paid_back = refund_object(refund.stripe_refund_id)
    assert (
        post_webhook(charge_refunded(topup, "evt_sr_1", [paid_back])).status_code == 200
    )
    refund.refresh_from_db()
    assert refund.status == SelfRefundStatus.REFUNDED and refund.closed_at
    assert (
        post_webhook(charge_refunded(topup, "evt_sr_2", [paid_back])).status_code == 200
    )
    assert LedgerEntry.objects.filter(kind=EntryKind.REFUND).count() == 1
    assert balances(bob.account) == (0, 0)
    topup.refresh_from_db()
    assert topup.refunded_nanos == usd_to_nanos("95")
    assert ledger_check() == []


def test_usage_since_the_payment_lowers_the_refund_and_the_fee_rounds_up(
    bob, card_save, stripe_settings
):
    topup = paid_top_up(bob, card_save)
    # $20 of bonus first, then $10.123456789 of the top-up's own credits.
    spend(bob.account, "30.123456789")

    response = ask_refund(bob, topup)

    assert response.status_code == 201, response.content
    # Refundable: $100 − $30.123456789 = $69.876543211, in whole cents $69.87;
    # the fee 5% of it ($3.4935) rounded up to $3.50; paid back $66.37.
    assert (response.json()["amount"], response.json()["fee"]) == (
        "66.370000000",
        "3.500000000",
    )
    refund = SelfRefund.objects.get()
    assert refund.usage_nanos == usd_to_nanos("30.123456789")
    # $69.87 leaves the top-up's lot; its bonus was already spent.
    assert balances(bob.account) == (usd_to_nanos("20.006543211"), 0)
    assert LedgerEntry.objects.get(kind=EntryKind.REFUND).amount_nanos == (
        -usd_to_nanos("69.87")
    )
    listed = stripe.Refund.list(
        payment_intent=topup.payment_intent_id, api_key=SECRET_KEY
    )
    assert [r.amount for r in listed.data] == [6637]
    assert ledger_check() == []


def test_a_refund_stripe_fails_later_gives_the_credits_back_once(
    bob, card_save, stripe_settings
):
    topup = paid_top_up(bob, card_save)
    spend(bob.account, "4")  # from the bonus
    assert ask_refund(bob, topup).status_code == 201
    refund = SelfRefund.objects.get()
    # $96 refundable: $91.20 back, $4.80 fee; $96 of the top-up and $16 of
    # the bonus taken.
    assert (refund.amount_nanos, refund.fee_nanos) == (
        usd_to_nanos("91.20"),
        usd_to_nanos("4.80"),
    )
    assert balances(bob.account) == (usd_to_nanos("4"), 0)

    failed = refund_object(refund.stripe_refund_id, status="failed")
    updated = event("charge.refund.updated", "evt_sr_failed", failed)
    assert post_webhook(updated).status_code == 200

    refund.refresh_from_db()
    assert refund.status == SelfRefundStatus.FAILED
    assert refund.returned_entry.reverses == refund.entry
    assert refund.returned_entry.amount_nanos == usd_to_nanos("112")
    assert balances(bob.account) == (usd_to_nanos("100"), usd_to_nanos("16"))
    # Heard of again, by other events: given back once.
    again = event("refund.updated", "evt_sr_failed_2", failed)
    assert post_webhook(again).status_code == 200
    listed = charge_refunded(topup, "evt_sr_failed_3", [failed])
    assert post_webhook(listed).status_code == 200
    assert balances(bob.account) == (usd_to_nanos("100"), usd_to_nanos("16"))
    assert LedgerEntry.objects.filter(kind=EntryKind.REFUND).count() == 2
    topup.refresh_from_db()
    assert topup.refunded_nanos == 0
    # Nothing in progress any more: the customer may ask again.
    assert ask_refund(bob, topup).status_code == 201
    assert SelfRefund.objects.filter(status=SelfRefundStatus.REFUNDING).count() == 1
    assert ledger_check() == []


def test_a_refund_stripe_refuses_at_once_takes_nothing(bob, card_save, stripe_settings):
    topup = paid_top_up(bob, card_save)
    # A payment Stripe does not know: its refund is refused.
    TopUp.objects.filter(pk=topup.pk).update(payment_intent_id="pi_unknown0000")

    response = ask_refund(bob, topup)

    assert response.status_code == 201, response.content
    assert response.json()["status"] == "failed"
    assert response.json()["failure_message"]
    assert balances(bob.account) == (usd_to_nanos("100"), usd_to_nanos("20"))
    assert TopUp.objects.get(pk=topup.pk).refunded_nanos == 0
    assert ledger_check() == []


def test_a_top_up_older_than_24_hours_is_refused(bob, card_save, stripe_settings):
    topup = paid_top_up(bob, card_save)
    TopUp.objects.filter(pk=topup.pk).update(
        succeeded_at=timezone.now() - timedelta(hours=24, seconds=1)
    )
    before = counts()

    response = ask_refund(bob, topup)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "refund_window_closed"
    assert "within 24 hours" in response.json()["error"]["message"]
    assert counts() == before and not SelfRefund.objects.exists()


def test_credits_held_or_taken_from_the_top_up_refuse_it(
    bob, ops, card_save, stripe_settings
):
    topup = paid_top_up(bob, card_save)
    # Requests in flight hold $90 of the $120: $100 cannot be taken.
    hold = hold_place(account=bob.account, amount_nanos=usd_to_nanos("90"))
    response = ask_refund(bob, topup)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "refund_not_covered"
    assert "held by requests in flight" in response.json()["error"]["message"]

    from billing.ledger.holds import hold_release

    hold_release(hold_id=hold.id)
    # An operator took $50 of the top-up's own credits back by hand.
    credit_grant(
        account=bob.account,
        source=LotSource.ADJUSTMENT,
        pool=Pool.TOPUP,
        amount_nanos=-usd_to_nanos("50"),
        reason="correction",
        actor=ops,
        idempotency_key="adjust",
    )
    response = ask_refund(bob, topup)
    assert response.status_code == 400
    assert (
        "Only $50.000000000 of this top-up's own credits remain"
        in (response.json()["error"]["message"])
    )
    assert not SelfRefund.objects.exists()
    assert (
        stripe.Refund.list(
            payment_intent=topup.payment_intent_id, api_key=SECRET_KEY
        ).data
        == []
    )
    assert ledger_check() == []


def test_nothing_refundable_once_the_top_up_was_spent(bob, card_save, stripe_settings):
    topup = paid_top_up(bob, card_save)
    spend(bob.account, "100")
    response = ask_refund(bob, topup)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "nothing_refundable"


def test_ten_requests_at_once_make_one_refund(bob, card_save, stripe_settings):
    topup = paid_top_up(bob, card_save)

    answers = run_concurrently([lambda: ask_refund(bob, topup)] * 10, workers=10)

    codes = sorted(answer.status_code for answer in answers)
    assert codes == [201] + [409] * 9, codes
    refused = next(a for a in answers if a.status_code == 409)
    assert refused.json()["error"]["code"] == "refund_in_progress"
    assert SelfRefund.objects.count() == 1
    assert LedgerEntry.objects.filter(kind=EntryKind.REFUND).count() == 1
    listed = stripe.Refund.list(
        payment_intent=topup.payment_intent_id, api_key=SECRET_KEY
    )
    assert [r.amount for r in listed.data] == [9500]
    assert balances(bob.account) == (0, 0)
    assert ledger_check() == []


def test_another_accounts_top_up_is_404(alice, bob, card_save, stripe_settings):
    topup = paid_top_up(bob, card_save)
    assert ask_refund(alice, topup).status_code == 404
    assert api(bob).post("/api/v1/top-ups/999999/refund").status_code == 404
    assert not SelfRefund.objects.exists()
    assert balances(bob.account) == (usd_to_nanos("100"), usd_to_nanos("20"))


def test_a_refund_whose_webhook_was_lost_is_ended_by_asking_stripe(
    bob, card_save, stripe_settings
):
    topup = paid_top_up(bob, card_save)
    assert ask_refund(bob, topup).status_code == 201
    assert self_refunds_resolve() == 0  # too fresh to ask about
    assert self_refunds_resolve(older_than=timedelta(0)) == 1
    assert SelfRefund.objects.get().status == SelfRefundStatus.REFUNDED
    assert balances(bob.account) == (0, 0)
    assert ledger_check() == []


def test_a_refund_pauses_auto_top_up_that_would_charge_again(
    bob, card_save, stripe_settings
):
    topup = paid_top_up(bob, card_save)
    AutoTopUp.objects.create(
        account=bob.account,
        enabled=True,
        threshold_nanos=usd_to_nanos("10"),
        amount_nanos=usd_to_nanos("20"),
        payment_method_id=topup.payment_method_id,
    )
    assert ask_refund(bob, topup).status_code == 201
    auto = AutoTopUp.objects.get(account=bob.account)
    assert auto.paused_at is not None
    assert "refund" in auto.paused_reason
    assert not auto.paused_by_operator_only


def test_operators_see_refund_requests_with_their_status(
    bob, ops, card_save, stripe_settings, client
):
    topup = paid_top_up(bob, card_save)
    assert ask_refund(bob, topup).status_code == 201
    refund = SelfRefund.objects.get()
    client.force_login(ops)
    listing = client.get("/admin/billing/selfrefund/").content.decode()
    assert "bob@example.com" in listing and "Refunding" in listing
    assert "$95.00" in listing and "$5.00" in listing
    detail = client.get(f"/admin/billing/selfrefund/{refund.pk}/change/")
    assert detail.status_code == 200
    assert "$95.000000000" in detail.content.decode()
