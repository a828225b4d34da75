"""Gift cards against localstripe with real signed webhooks: bought with no
bonus, active only once Stripe says it was paid, the code handed over once,
redeemed once (also when 20 try at the same moment), bound to a recipient,
refunded within 24 hours for a 5% fee, and within the day's limits."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import user_signup
from billing.models import (
    CreditLot,
    EntryKind,
    LedgerEntry,
    LotSource,
    TopUp,
    TopUpRefund,
    TopUpStatus,
)
from billing.payments.services import topup_refund
from gifts.models import GiftCard, GiftCardStatus, Redemption
from gifts.services import code_redeem
from invoices.models import Invoice
from tests.support.ledger import USD, assert_ledger_whole, wallet_of
from tests.support.payments import THREE_D_SECURE
from tests.support.threads import run_concurrently
from tests.support.world import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

CODE = re.compile(r"AGIP-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}")


def api(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def buy(user, card, amount: str = "25", **extra):
    body = {"amount": amount, "payment_method": card.id, **extra}
    return api(user).post("/api/v1/gift-cards", body, format="json")


def bought(user, card, amount: str = "25", **extra) -> dict:
    response = buy(user, card, amount, **extra)
    assert response.status_code == 201, response.content
    return response.json()


def redeem(user, code: str):
    return api(user).post("/api/v1/gift-codes/redeem", {"code": code}, format="json")


def authenticate_3ds(localstripe, client_secret: str) -> None:
    import json
    import urllib.request

    from billing.payments.localstripe import PUBLISHABLE_KEY

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


def test_bought_paid_by_the_webhook_code_shown_once_redeemed_once(
    alice, bob, card_save, stripe_webhooks
):
    card = card_save(alice.account, THREE_D_SECURE)
    alice_before = wallet_of(alice.account)
    body = bought(alice, card, "40")
    assert (body["amount"], body["status"], body["code"]) == (
        "40.000000000",
        "pending",
        None,
    )
    assert body["next_action"] and body["client_secret"] and body["payment_intent"]
    # Not paid yet: no code to show.
    early = api(alice).post(f"/api/v1/gift-cards/{body['id']}/code")
    assert early.status_code == 409
    # Stripe.js finishes 3-D Secure; the signed webhook says it was paid.
    authenticate_3ds(stripe_webhooks.localstripe, body["client_secret"])
    assert stripe_webhooks.wait_for(
        lambda: GiftCard.objects.filter(status=GiftCardStatus.ACTIVE).exists(),
        timeout=8,
    )
    topup = TopUp.objects.get()
    assert (topup.purpose, topup.bonus_nanos, topup.status, topup.entry_id) == (
        "gift_card",
        0,
        TopUpStatus.SUCCEEDED,
        None,
    )
    assert topup.invoice_id is not None  # an invoice for the card
    # The buyer got no credits for it: a gift card is not a top-up.
    assert wallet_of(alice.account) == alice_before
    shown = api(alice).post(f"/api/v1/gift-cards/{body['id']}/code")
    assert shown.status_code == 200, shown.content
    code = shown.json()["code"]
    assert CODE.fullmatch(code)
    again = api(alice).post(f"/api/v1/gift-cards/{body['id']}/code")
    assert again.status_code == 409 and code not in again.content.decode()
    listed = api(alice).get("/api/v1/gift-cards").json()
    assert listed["count"] == 1
    assert listed["results"][0]["code_hint"] == f"AGIP-…-{code[-4:]}"
    assert code not in str(listed)
    stored = GiftCard.objects.get()
    assert code not in str(GiftCard.objects.filter(pk=stored.pk).values().get())

    response = redeem(bob, code)
    assert response.status_code == 200, response.content
    assert response.json() == {
        "amount": "40.000000000",
        "type": "gift",
        "balance": "40.000000000",
    }
    assert wallet_of(bob.account) == (0, 40 * USD, 0)
    entry = LedgerEntry.objects.get(account=bob.account)
    assert (entry.kind, entry.method, entry.amount_nanos) == (
        "gift",
        "Gift card",
        40 * USD,
    )
    lot = CreditLot.objects.get(entry=entry)
    assert (lot.source, lot.pool, lot.amount_nanos, lot.expires_at) == (
        LotSource.GIFT,
        "bonus",
        40 * USD,
        None,
    )
    second = redeem(alice, code)
    assert (second.status_code, second.json()["error"]["code"]) == (409, "code_used")
    assert (
        LedgerEntry.objects.filter(kind=EntryKind.GIFT, method="Gift card").count() == 1
    )
    assert_ledger_whole(alice.account, bob.account)


def test_a_saved_card_pays_at_once_and_the_answer_shows_the_code(
    alice, card_save, stripe_webhooks
):
    card = card_save(alice.account)
    body = bought(alice, card, "5")
    assert body["status"] == "active"
    assert CODE.fullmatch(body["code"])
    assert api(alice).post(f"/api/v1/gift-cards/{body['id']}/code").status_code == 409
    # The webhook that follows changes nothing.
    stripe_webhooks.wait_for(
        lambda: (
            __import__("djstripe.models")
            .models.Event.objects.filter(type="payment_intent.succeeded")
            .exists()
        ),
        timeout=6,
    )
    assert GiftCard.objects.get().code_last4 == body["code"][-4:]


def test_twenty_concurrent_redemptions_of_one_code_credit_once(
    alice, card_save, stripe_settings
):
    card = card_save(alice.account)
    code = bought(alice, card, "20")["code"]
    users = [
        user_signup(email=f"racer{i}@example.com", password=PASSWORD) for i in range(20)
    ]
    results = run_concurrently(
        [lambda u=u: code_redeem(account=u.account, code=code) for u in users],
        workers=20,
    )
    won = [r for r in results if not isinstance(r, Exception)]
    assert len(won) == 1, results
    assert {type(r).__name__ for r in results if r not in won} == {"CodeUsed"}
    assert Redemption.objects.count() == 1
    gifts = LedgerEntry.objects.filter(method="Gift card")
    assert list(gifts.values_list("amount_nanos", flat=True)) == [20 * USD]
    assert_ledger_whole(*(u.account for u in users))


def test_a_card_for_a_recipient_is_emailed_and_only_they_redeem_it(
    alice, bob, card_save, stripe_settings
):
    card = card_save(alice.account)
    body = bought(alice, card, "30", recipient_email="Carol@Example.com")
    assert body["status"] == "active" and body["code"] is None
    assert body["recipient_email"] == "carol@example.com"
    (email,) = mail.outbox
    assert email.to == ["carol@example.com"]
    code = CODE.search(email.body).group(0)
    assert code not in email.subject
    # The buyer does not see it: it is the recipient's.
    refused = api(alice).post(f"/api/v1/gift-cards/{body['id']}/code")
    assert refused.status_code == 409
    assert redeem(bob, code).status_code == 403
    assert redeem(alice, code).json()["error"]["code"] == "code_for_another_recipient"
    carol = user_signup(email="carol@example.com", password=PASSWORD)
    assert redeem(carol, code).status_code == 200
    assert wallet_of(carol.account) == (0, 30 * USD, 0)
    # Sent once: the sweep finds nothing more to send.
    from gifts.tasks import gift_cards_email_unsent

    GiftCard.objects.update(paid_at=timezone.now() - timedelta(hours=1))
    assert gift_cards_email_unsent() == 0
    assert len(mail.outbox) == 1
    assert_ledger_whole(carol.account)


def test_an_unredeemed_card_is_refunded_within_24_hours_less_5_percent(
    alice, bob, card_save, stripe_webhooks
):
    card = card_save(alice.account)
    body = bought(alice, card, "100")
    response = api(alice).post(f"/api/v1/gift-cards/{body['id']}/refund")
    assert response.status_code == 200, response.content
    shown = response.json()
    assert (shown["status"], shown["refund"], shown["refund_fee"]) == (
        "refunded",
        "95.000000000",
        "5.000000000",
    )
    topup = TopUp.objects.get()
    assert topup.refunded_nanos == 95 * USD
    (refund,) = TopUpRefund.objects.all()
    assert refund.amount_nanos == 95 * USD and refund.entry_id is None
    # Stripe's charge.refunded webhook finds the refund recorded: nothing more.
    stripe_webhooks.wait_for(
        lambda: (
            __import__("djstripe.models")
            .models.Event.objects.filter(type="charge.refunded")
            .exists()
        ),
        timeout=6,
    )
    assert TopUpRefund.objects.count() == 1
    topup.refresh_from_db()
    assert topup.refunded_nanos == 95 * USD
    # Its code is void.
    assert redeem(bob, body["code"]).json()["error"]["code"] == "code_used"
    assert api(alice).post(f"/api/v1/gift-cards/{body['id']}/refund").status_code == 409
    assert not LedgerEntry.objects.filter(account=bob.account).exists()


def test_no_refund_after_redemption_after_24_hours_or_once_emailed(
    alice, bob, card_save, stripe_settings
):
    card = card_save(alice.account)
    redeemed = bought(alice, card, "10")
    assert redeem(bob, redeemed["code"]).status_code == 200
    answer = api(alice).post(f"/api/v1/gift-cards/{redeemed['id']}/refund")
    assert answer.status_code == 409
    assert "it was redeemed" in answer.json()["error"]["message"]

    old = bought(alice, card, "10")
    GiftCard.objects.filter(pk=old["id"]).update(
        paid_at=timezone.now() - timedelta(hours=24, seconds=1)
    )
    answer = api(alice).post(f"/api/v1/gift-cards/{old['id']}/refund")
    assert answer.status_code == 409
    assert "within 24 hours" in answer.json()["error"]["message"]

    emailed = bought(alice, card, "10", recipient_email="bob@example.com")
    answer = api(alice).post(f"/api/v1/gift-cards/{emailed['id']}/refund")
    assert answer.status_code == 409
    assert "sent to bob@example.com" in answer.json()["error"]["message"]
    assert TopUpRefund.objects.count() == 0
    assert TopUp.objects.filter(refunded_nanos__gt=0).count() == 0


def test_an_operator_refund_of_a_redeemed_card_takes_back_what_remains(
    alice, bob, card_save, stripe_settings
):
    card = card_save(alice.account)
    body = bought(alice, card, "50")
    assert redeem(bob, body["code"]).status_code == 200
    topup = TopUp.objects.get()
    topup_refund(topup=topup, amount_nanos=50 * USD, reason="fraud", actor=None)
    assert wallet_of(bob.account) == (0, 0, 0)
    taken = LedgerEntry.objects.get(account=bob.account, kind=EntryKind.REFUND)
    assert taken.amount_nanos == -50 * USD
    assert GiftCard.objects.get().status == GiftCardStatus.REDEEMED
    assert_ledger_whole(alice.account, bob.account)


def test_at_most_1000_dollars_and_10_cards_a_day(
    alice, bob, card_save, stripe_settings
):
    card = card_save(alice.account)
    bought(alice, card, "500")
    bought(alice, card, "495")
    over = buy(alice, card, "6")
    assert over.status_code == 429 and int(over["Retry-After"]) > 0
    assert "$5.00 is left for today" in over.json()["error"]["message"]
    bought(alice, card, "5")
    assert buy(alice, card, "5").status_code == 429
    # Yesterday's cards do not count towards today's limits.
    GiftCard.objects.update(created_at=timezone.now() - timedelta(days=1))
    bob_card = card_save(bob.account)
    for _ in range(10):
        bought(bob, bob_card, "5")
    tenth = buy(bob, bob_card, "5")
    assert tenth.status_code == 429
    assert "at most 10 gift cards a day" in tenth.json()["error"]["message"]
    assert bought(alice, card, "5")["status"] == "active"


@pytest.mark.parametrize("amount", ["4", "501", "10.50", "abc"])
def test_amounts_are_whole_dollars_from_5_to_500(
    alice, card_save, stripe_settings, amount
):
    card = card_save(alice.account)
    response = buy(alice, card, amount)
    assert response.status_code == 400
    assert "amount" in response.content.decode()
    assert not GiftCard.objects.exists()


def test_a_bad_recipient_email_is_refused_naming_it(alice, card_save, stripe_settings):
    card = card_save(alice.account)
    response = buy(alice, card, "10", recipient_email="not-an-email")
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("recipient_email:")


def test_another_account_s_cards_are_404(alice, bob, card_save, stripe_settings):
    card = card_save(alice.account)
    body = bought(alice, card, "10")
    for path in ("", "/code", "/refund"):
        url = f"/api/v1/gift-cards/{body['id']}{path}"
        response = api(bob).post(url) if path else api(bob).get(url)
        assert response.status_code == 404, (path, response.content)
    assert api(bob).get("/api/v1/gift-cards").json()["count"] == 0
    assert GiftCard.objects.get().status == GiftCardStatus.ACTIVE


def test_a_paid_card_has_an_invoice_for_the_buyer_only(
    alice, bob, card_save, stripe_settings
):
    card = card_save(alice.account)
    before = wallet_of(alice.account)
    body = bought(alice, card, "25")
    assert body["status"] == "active"
    invoice_url = body["invoice_url"]
    assert invoice_url.endswith("/pdf")
    invoice = Invoice.objects.get()
    assert invoice.total_nanos == 25 * 10**9
    assert [line["description"] for line in invoice.lines] == [
        "AGIPower gift card: $25.00"
    ]
    # No credits for the buyer, and the invoice is the buyer's alone.
    assert wallet_of(alice.account) == before
    path = invoice_url.split("testserver", 1)[-1]
    response = api(alice).get(path)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert api(bob).get(path).status_code == 404
    listed = api(alice).get("/api/v1/gift-cards").json()["results"]
    assert [row["invoice_url"] for row in listed] == [invoice_url]
