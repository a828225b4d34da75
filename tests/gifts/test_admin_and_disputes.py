"""Operators mint promotion codes in admin and see them once (a CSV), never a
card's code; they lift a lockout. A disputed gift card is held until the
dispute is won; a redeemed one's credits go back out and, when won, return."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import EntryKind, LedgerEntry, TopUp
from billing.payments.services import topup_dispute_update
from gifts.codes import code_generate
from gifts.models import GiftCard, GiftCardStatus, PromotionBatch, RedeemGuard
from tests.support.ledger import USD, assert_ledger_whole, wallet_of


def api(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def redeem(user, code: str):
    return api(user).post("/api/v1/gift-codes/redeem", {"code": code}, format="json")


def test_an_operator_mints_a_batch_once_and_downloads_its_codes(
    client, ops, alice, bob
):
    client.force_login(ops)
    response = client.post(
        "/admin/gifts/promotionbatch/add/",
        {
            "name": "Conference",
            "amount": "15",
            "kind": "codes",
            "count": "3",
            "max_redemptions": "1",
            "expires_at_0": (timezone.now() + timedelta(days=3)).strftime("%Y-%m-%d"),
            "expires_at_1": "12:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    batch = PromotionBatch.objects.get()
    assert (batch.amount_nanos, batch.created_by) == (15 * USD, ops)
    minted = client.post(
        "/admin/gifts/promotionbatch/",
        {"action": "mint_codes", "_selected_action": [batch.pk]},
    )
    assert minted["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(minted.content.decode())))
    assert len(rows) == 3 and rows[0]["amount"] == "$15.00"
    codes = [row["code"] for row in rows]
    # Once: minting again shows nothing.
    again = client.post(
        "/admin/gifts/promotionbatch/",
        {"action": "mint_codes", "_selected_action": [batch.pk]},
        follow=True,
    )
    assert "minted already" in again.content.decode()
    assert not any(code in again.content.decode() for code in codes)
    assert redeem(bob, codes[2]).status_code == 200
    assert wallet_of(bob.account) == (0, 15 * USD, 0)
    page = client.get("/admin/gifts/redemption/").content.decode()
    assert "bob@example.com" in page and codes[2] not in page


def test_a_lockout_is_listed_and_lifted_by_an_operator(client, ops, alice):
    for _ in range(5):
        redeem(alice, code_generate())
    assert RedeemGuard.objects.get().locked_until > timezone.now()
    client.force_login(ops)
    assert (
        "alice@example.com" in client.get("/admin/gifts/redeemguard/").content.decode()
    )
    client.post(
        "/admin/gifts/redeemguard/",
        {"action": "unlock", "_selected_action": [alice.account.pk]},
    )
    assert RedeemGuard.objects.get().locked_until is None
    assert redeem(alice, code_generate()).status_code == 400


@pytest.mark.django_db(transaction=True)
def test_a_dispute_holds_an_unredeemed_card_until_it_is_won(
    alice, bob, card_save, stripe_settings
):
    card = card_save(alice.account)
    body = (
        api(alice)
        .post(
            "/api/v1/gift-cards",
            {"amount": "20", "payment_method": card.id},
            format="json",
        )
        .json()
    )
    topup = TopUp.objects.get()
    dispute = {
        "payment_intent_id": topup.payment_intent_id,
        "dispute_id": "dp_gift_1",
        "amount_cents": 2000,
    }
    topup_dispute_update(**dispute, status="needs_response", closed=False)
    assert GiftCard.objects.get().status == GiftCardStatus.DISPUTED
    held = redeem(bob, body["code"])
    assert (held.status_code, held.json()["error"]["code"]) == (409, "code_on_hold")
    assert api(alice).post(f"/api/v1/gift-cards/{body['id']}/refund").status_code == 409
    topup_dispute_update(**dispute, status="won", closed=True)
    assert redeem(bob, body["code"]).status_code == 200
    assert wallet_of(bob.account) == (0, 20 * USD, 0)
    assert_ledger_whole(alice.account, bob.account)


@pytest.mark.django_db(transaction=True)
def test_a_dispute_of_a_redeemed_card_takes_its_credits_back_and_a_win_returns_them(
    alice, bob, card_save, stripe_settings
):
    card = card_save(alice.account)
    code = (
        api(alice)
        .post(
            "/api/v1/gift-cards",
            {"amount": "30", "payment_method": card.id},
            format="json",
        )
        .json()["code"]
    )
    assert redeem(bob, code).status_code == 200
    topup = TopUp.objects.get()
    dispute = {
        "payment_intent_id": topup.payment_intent_id,
        "dispute_id": "dp_gift_2",
        "amount_cents": 3000,
    }
    topup_dispute_update(**dispute, status="needs_response", closed=False)
    topup_dispute_update(**dispute, status="under_review", closed=False)
    assert wallet_of(bob.account) == (0, 0, 0)
    taken = LedgerEntry.objects.get(account=bob.account, kind=EntryKind.DISPUTE)
    assert taken.amount_nanos == -30 * USD
    topup_dispute_update(**dispute, status="won", closed=True)
    assert wallet_of(bob.account) == (0, 30 * USD, 0)
    assert LedgerEntry.objects.filter(account=bob.account).count() == 3
    assert_ledger_whole(alice.account, bob.account)
