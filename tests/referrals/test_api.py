"""GET /api/v1/referrals and the console's Referrals page: the link, signups,
what was earned net of revocations, the rewards; each account sees its own."""

from __future__ import annotations

import pytest
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from billing.payments.refunds import topup_refund
from tests.support import pages
from tests.support.ledger import USD
from tests.support.payments import VISA_DEBIT, with_profile
from tests.support.referrals import code_of, signup_with, top_up


def api(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_a_new_referrer_has_a_link_and_nothing_yet(alice, settings):
    settings.SITE_URL = "https://agipower.example"
    body = api(alice).get("/api/v1/referrals").json()
    assert body == {
        "code": code_of(alice),
        "link": f"https://agipower.example/signup?ref={code_of(alice)}",
        "signups": 0,
        "earned": "0.000000000",
        "rewards_count": 0,
        "rewards": [],
    }
    assert api(alice).get("/api/v1/referrals/").status_code == 200


@pytest.mark.django_db
def test_without_signing_in_it_is_401(client):
    assert client.get("/api/v1/referrals").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_earned_is_net_of_revocations_and_each_account_sees_its_own(
    alice, bob, ops, card_save, stripe_settings, client
):
    carol = with_profile(signup_with(code_of(bob), "carol@example.com"))
    signup_with(code_of(bob), "dave@example.com")
    signup_with(code_of(alice), "bob+again@example.com")  # someone else's code
    card = card_save(carol.account, VISA_DEBIT)
    first = top_up(carol, "20", card)
    top_up(carol, "30", card)
    topup_refund(topup=first, amount_nanos=20 * USD, reason="asked", actor=ops)

    body = api(bob).get("/api/v1/referrals").json()
    assert (body["code"], body["signups"], body["earned"], body["rewards_count"]) == (
        code_of(bob),
        2,
        "5.000000000",
        2,
    )
    newest, oldest = body["rewards"]
    assert {k: newest[k] for k in ("top_up", "status", "amount", "revoked")} == {
        "top_up": "30.000000000",
        "status": "earned",
        "amount": "5.000000000",
        "revoked": "0.000000000",
    }
    assert (oldest["status"], oldest["revoked"], oldest["note"]) == (
        "revoked",
        "5.000000000",
        "Order refunded",
    )
    assert newest["referee"] == "ca•••@example.com"

    # Alice sees her own referral only, and none of bob's rewards.
    mine = api(alice).get("/api/v1/referrals").json()
    assert (mine["signups"], mine["earned"], mine["rewards"]) == (
        1,
        "0.000000000",
        [],
    )

    # Bob's console page says the same.
    client.force_login(bob)
    page = client.get("/console/referrals")
    assert page.status_code == 200
    assert pages.text(page, "referral-link").endswith(f"/signup?ref={code_of(bob)}")
    assert pages.text(page, "referral-signups") == "2"
    assert pages.text(page, "referral-earned") == "$5.00"
    html = page.content.decode()
    assert 'aria-current="page"' in html and "Order refunded" in html
    assert f'data-copy="{body["link"]}"' in html


def test_the_schema_documents_referrals_without_warnings(db):
    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence():
        schema = SchemaGenerator().get_schema(request=None, public=True)
    validate_schema(schema)
    ours = [
        message
        for message in (*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache)
        if "referral" in message.lower()
    ]
    assert ours == []
    operation = schema["paths"]["/api/v1/referrals"]["get"]
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]
    name = ref["$ref"].rsplit("/", 1)[1]
    properties = schema["components"]["schemas"][name]["properties"]
    assert {"code", "link", "signups", "earned"} <= set(properties)
