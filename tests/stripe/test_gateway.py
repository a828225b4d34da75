"""billing.payments.stripe_gateway against localstripe."""

from __future__ import annotations

import threading

import pytest
import stripe
from django.db import connection
from djstripe import models as djstripe

from billing.errors import (
    PaymentFailed,
    PaymentsNotConfigured,
    RefundFailed,
    UnknownPaymentMethod,
)
from billing.payments import stripe_gateway as gateway
from billing.payments.localstripe import SECRET_KEY
from tests.support.payments import (
    CHARGE_FAILS,
    THREE_D_SECURE,
    VISA,
    VISA_DEBIT,
    browser_card_confirm,
)


def _stripe_customers(account) -> list:
    """The account's customers in Stripe (localstripe keeps every test's)."""
    listed = stripe.Customer.list(api_key=SECRET_KEY, email=account.email, limit=100)
    return [
        c
        for c in listed.auto_paging_iter()
        if c.metadata.get("account_id") == str(account.pk)
    ]


def _pay(account, card, **kwargs):
    params = {
        "account": account,
        "amount_cents": 2_000,
        "method": "card",
        "payment_method_id": card.id,
        "confirm": True,
        "idempotency_key": f"test-{card.id}-{kwargs.get('off_session', False)}",
        "metadata": {"topup": "1"},
    }
    return gateway.payment_intent_create(**{**params, **kwargs})


# --- configuration -------------------------------------------------------------


def test_unset_keys_mean_payments_are_not_configured(settings, alice):
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_PUBLISHABLE_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = ""
    assert gateway.stripe_configured() is False
    with pytest.raises(PaymentsNotConfigured, match="not configured"):
        gateway.customer_id_for(account=alice.account)
    with pytest.raises(PaymentsNotConfigured):
        gateway.cards_list(account=alice.account)


def test_keys_set_mean_payments_are_configured(stripe_settings):
    assert gateway.stripe_configured() is True


# --- customers -----------------------------------------------------------------


def test_customer_is_created_once_and_mirrored(stripe_settings, alice):
    account = alice.account
    first = gateway.customer_id_for(account=account)
    again = gateway.customer_id_for(account=account)
    assert first == again
    assert [c.id for c in _stripe_customers(account)] == [first]
    mirrored = djstripe.Customer.objects.get(id=first)
    assert mirrored.subscriber == account
    assert mirrored.email == "alice@example.com"
    assert mirrored.livemode is False


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_first_calls_make_one_customer(stripe_settings, bob):
    account = bob.account
    barrier = threading.Barrier(2)
    ids: list[str] = []
    errors: list[BaseException] = []

    def call():
        try:
            barrier.wait()
            ids.append(gateway.customer_id_for(account=account))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(ids) == 2 and ids[0] == ids[1]
    assert djstripe.Customer.objects.filter(subscriber=account).count() == 1
    assert [c.id for c in _stripe_customers(account)] == [ids[0]]


# --- cards ---------------------------------------------------------------------


def test_card_saved_through_a_setup_intent_is_listed(stripe_settings, alice, card_save):
    intent = gateway.setup_intent_create(account=alice.account)
    assert intent.id.startswith("seti_")
    assert intent.client_secret.startswith(intent.id + "_secret_")

    card = card_save(alice.account, VISA)

    assert card == gateway.Card(
        id=card.id,
        brand="visa",
        last4="4242",
        exp_month=12,
        exp_year=2030,
        default=True,  # the first card becomes the default
    )
    assert gateway.cards_list(account=alice.account) == [card]
    assert gateway.card_get(account=alice.account, payment_method_id=card.id) == card
    mirrored = djstripe.PaymentMethod.objects.get(id=card.id)
    assert mirrored.customer.subscriber == alice.account


def test_listing_cards_makes_no_customer(stripe_settings, bob):
    assert gateway.cards_list(account=bob.account) == []
    with pytest.raises(UnknownPaymentMethod):
        gateway.card_get(account=bob.account, payment_method_id="pm_card_visa")
    assert not djstripe.Customer.objects.filter(subscriber=bob.account).exists()
    assert _stripe_customers(bob.account) == []


def test_card_is_found_right_after_stripe_js_saved_it(
    stripe_settings, localstripe, alice
):
    intent = gateway.setup_intent_create(account=alice.account)
    confirmed = browser_card_confirm(localstripe, intent, VISA_DEBIT)

    card = gateway.card_get(
        account=alice.account, payment_method_id=confirmed["payment_method"]
    )

    assert (card.last4, card.default) == ("5556", True)


def test_card_attach_saves_a_card_made_by_stripe_js(stripe_settings, alice):
    made = stripe.PaymentMethod.create(
        api_key=SECRET_KEY,
        type="card",
        card={"number": VISA_DEBIT, "exp_month": 3, "exp_year": 2031, "cvc": "123"},
    )
    card = gateway.card_attach(account=alice.account, payment_method_id=made.id)
    assert (card.id, card.last4, card.exp_month, card.exp_year, card.default) == (
        made.id,
        "5556",
        3,
        2031,
        True,
    )
    # Saving it again is harmless.
    assert gateway.card_attach(account=alice.account, payment_method_id=made.id) == card
    assert gateway.cards_list(account=alice.account) == [card]


def test_default_card_can_be_changed(stripe_settings, alice, card_save):
    first = card_save(alice.account, VISA)
    second = card_save(alice.account, VISA_DEBIT)
    assert not second.default

    gateway.card_set_default(account=alice.account, payment_method_id=second.id)

    cards = {
        card.last4: card.default for card in gateway.cards_list(account=alice.account)
    }
    assert cards == {"4242": False, "5556": True}
    assert (
        gateway.card_get(account=alice.account, payment_method_id=first.id).default
        is False
    )
    customer = djstripe.Customer.objects.get(subscriber=alice.account)
    assert customer.default_payment_method_id is not None
    assert customer.default_payment_method.id == second.id


def test_detached_card_is_gone(stripe_settings, alice, card_save):
    first = card_save(alice.account, VISA)
    second = card_save(alice.account, VISA_DEBIT)
    gateway.card_set_default(account=alice.account, payment_method_id=second.id)

    gateway.card_detach(account=alice.account, payment_method_id=second.id)

    # The default went with it: the remaining card is shown as the default.
    assert gateway.cards_list(account=alice.account) == [
        gateway.Card(first.id, "visa", "4242", 12, 2030, True)
    ]
    with pytest.raises(UnknownPaymentMethod):
        gateway.card_get(account=alice.account, payment_method_id=second.id)
    assert djstripe.PaymentMethod.objects.get(id=second.id).customer is None


def test_another_accounts_card_is_refused(stripe_settings, alice, bob, card_save):
    bobs = card_save(bob.account, VISA)
    gateway.customer_id_for(account=alice.account)
    calls = [
        lambda pm: gateway.card_get(account=alice.account, payment_method_id=pm),
        lambda pm: gateway.card_detach(account=alice.account, payment_method_id=pm),
        lambda pm: gateway.card_set_default(
            account=alice.account, payment_method_id=pm
        ),
        lambda pm: gateway.card_attach(account=alice.account, payment_method_id=pm),
        lambda pm: _pay(alice.account, gateway.Card(pm, "", "", 0, 0, False)),
    ]
    for call in calls:
        for pm in (bobs.id, "pm_doesnotexist000000", "pm_../../v1/customers", ""):
            with pytest.raises(UnknownPaymentMethod):
                call(pm)
    # Bob still has his card, as his default.
    assert gateway.cards_list(account=bob.account) == [bobs]
    assert gateway.cards_list(account=alice.account) == []


# --- payments ------------------------------------------------------------------


def test_payment_with_a_saved_card_succeeds(stripe_settings, alice, card_save):
    card = card_save(alice.account, VISA)

    paid = _pay(alice.account, card)

    assert paid.id.startswith("pi_")
    assert paid.client_secret.startswith(paid.id + "_secret_")
    assert (paid.status, paid.amount_cents) == ("succeeded", 2_000)
    assert (paid.payment_method_id, paid.card_brand, paid.card_last4) == (
        card.id,
        "visa",
        "4242",
    )
    assert (paid.error_code, paid.error_message, paid.next_action_type) == (
        None,
        None,
        None,
    )
    assert gateway.payment_intent_retrieve(payment_intent_id=paid.id) == paid
    mirrored = djstripe.PaymentIntent.objects.get(id=paid.id)
    assert mirrored.stripe_data["status"] == "succeeded"
    assert mirrored.stripe_data["metadata"] == {
        "topup": "1",
        "account_id": str(alice.account.pk),
    }
    assert mirrored.customer.subscriber == alice.account


def test_off_session_decline_is_an_answer_not_an_exception(stripe_settings, alice):
    card = gateway.card_attach(
        account=alice.account, payment_method_id="pm_card_chargeCustomerFail"
    )

    declined = _pay(alice.account, card, off_session=True)

    assert declined.id.startswith("pi_")
    assert declined.status == "requires_payment_method"
    assert declined.error_code == "card_declined"
    assert declined.error_message == "Your card was declined."
    assert declined.card_last4 == "0341"
    again = gateway.payment_intent_retrieve(payment_intent_id=declined.id)
    assert (again.status, again.error_code) == (
        "requires_payment_method",
        "card_declined",
    )


def test_card_declined_when_charged(stripe_settings, alice, card_save):
    card = card_save(alice.account, CHARGE_FAILS)
    declined = _pay(alice.account, card)
    assert (declined.status, declined.error_code) == (
        "requires_payment_method",
        "card_declined",
    )


def test_3d_secure_card_requires_action(stripe_settings, alice, card_save):
    card = card_save(alice.account, THREE_D_SECURE)

    on_session = _pay(alice.account, card)
    assert on_session.status == "requires_action"
    assert on_session.next_action_type == "use_stripe_sdk"
    assert on_session.client_secret
    assert on_session.error_code is None

    off_session = _pay(alice.account, card, off_session=True)
    assert off_session.error_code == "authentication_required"
    assert off_session.error_message


def test_alipay_intent_is_left_for_stripe_js(stripe_settings, alice):
    intent = gateway.payment_intent_create(
        account=alice.account,
        amount_cents=500,
        method="alipay",
        idempotency_key="alipay-1",
        metadata={"topup": "7"},
        return_url="https://example.com/back",
    )
    assert intent.status == "requires_payment_method"
    assert intent.client_secret
    assert (intent.error_code, intent.payment_method_id) == (None, None)


def test_bad_arguments_are_refused_before_stripe(stripe_settings, alice):
    base = {
        "account": alice.account,
        "amount_cents": 500,
        "method": "card",
        "idempotency_key": "k",
        "metadata": {},
    }
    for bad, error in (
        ({"amount_cents": 0}, ValueError),
        ({"amount_cents": 5.0}, TypeError),
        ({"method": "bitcoin"}, ValueError),
        ({"off_session": True}, ValueError),
        ({"idempotency_key": ""}, ValueError),
    ):
        with pytest.raises(error):
            gateway.payment_intent_create(**{**base, **bad})


def test_refund_of_part_of_a_payment(stripe_settings, alice, card_save):
    paid = _pay(alice.account, card_save(alice.account, VISA))

    refund = gateway.refund_create(
        payment_intent_id=paid.id, amount_cents=500, idempotency_key="refund-1"
    )

    assert refund.id.startswith("re_")
    assert (refund.amount_cents, refund.status) == (500, "succeeded")


def test_stripe_errors_become_billing_errors(stripe_settings, alice, card_save):
    declined = _pay(
        alice.account, card_save(alice.account, CHARGE_FAILS), idempotency_key="d"
    )
    with pytest.raises(RefundFailed):
        gateway.refund_create(
            payment_intent_id=declined.id, amount_cents=100, idempotency_key="r"
        )
    with pytest.raises(PaymentFailed, match="try again"):
        gateway.payment_intent_retrieve(payment_intent_id="pi_doesnotexist00000")


def test_unreachable_stripe_is_a_payment_failure(stripe_settings, alice):
    gateway.customer_id_for(account=alice.account)
    stripe_settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens
    with pytest.raises(PaymentFailed, match="try again"):
        gateway.cards_list(account=alice.account)
