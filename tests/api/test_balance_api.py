from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from billing.ledger.debits import balance_debit
from billing.ledger.grants import topup_credit
from billing.ledger.holds import hold_place
from billing.models import EntryKind
from money import usd_to_nanos
from tests.support.world import new_key


@pytest.fixture
def client_for():
    def make(user):
        client = APIClient()
        client.force_login(user)
        return client

    return make


def _fund(account):
    topup_credit(
        account=account,
        amount_nanos=usd_to_nanos("100"),
        idempotency_key=new_key("pi"),
        reference="pi_test",
        method="Stripe",
    )
    for _ in range(3):
        balance_debit(
            account=account,
            amount_nanos=usd_to_nanos("0.000123456"),
            idempotency_key=new_key("req"),
        )
    hold_place(account=account, amount_nanos=usd_to_nanos("1"))


def test_balance_is_exact_decimal_strings(alice, client_for):
    _fund(alice.account)
    response = client_for(alice).get("/api/v1/balance")
    assert response.status_code == 200
    assert response.json() == {
        # $50 gift + $20 bonus, less 3 × 0.000123456 of usage (bonus first).
        "total_credits": "169.999629632",
        "top_up_credits": "100.000000000",
        "bonus_credits": "69.999629632",
        "held_credits": "1.000000000",
        "currency": "USD",
    }


def test_trailing_slash_is_accepted(alice, client_for):
    assert client_for(alice).get("/api/v1/balance/").status_code == 200


def test_breakdown_lines_sum_to_total(alice, client_for):
    _fund(alice.account)
    body = client_for(alice).get("/api/v1/balance/breakdown").json()
    assert body == {
        "top_ups": "100.000000000",
        "bonuses": "20.000000000",
        "gifts": "50.000000000",
        "referrals": "0.000000000",
        "compensations": "0.000000000",
        "adjustments": "0.000000000",
        "expired": "0.000000000",
        "usage": "-0.000370368",
        "refunds": "0.000000000",
        "total": "169.999629632",
    }
    lines = [Decimal(v) for k, v in body.items() if k != "total"]
    assert sum(lines) == Decimal(body["total"])


def test_transactions_group_usage_per_day_and_paginate(alice, client_for):
    _fund(alice.account)
    client = client_for(alice)
    body = client.get("/api/v1/transactions").json()
    assert body["count"] == 4  # gift, top-up, bonus, one usage day
    assert {"count", "next", "previous", "results"} <= body.keys()
    usage = body["results"][0]
    assert usage["type"] == EntryKind.USAGE
    assert usage["amount"] == "-0.000370368"
    assert usage["id"].startswith("usage-")
    assert set(usage) == {
        "id",
        "created_at",
        "amount",
        "type",
        "method",
        "description",
        "invoice_url",
    }
    topup = next(row for row in body["results"] if row["type"] == "topup")
    assert topup["method"] == "Stripe"
    assert topup["amount"] == "100.000000000"

    page = client.get("/api/v1/transactions?limit=2&offset=2").json()
    assert [row["id"] for row in page["results"]] == [
        row["id"] for row in body["results"][2:4]
    ]
    assert page["previous"] is not None and page["next"] is None


def test_another_account_sees_only_its_own(alice, bob, client_for):
    _fund(alice.account)
    client = client_for(bob)
    assert client.get("/api/v1/balance").json()["total_credits"] == "0.000000000"
    assert client.get("/api/v1/transactions").json()["count"] == 0


def test_anonymous_is_refused():
    client = APIClient()
    for path in (
        "/api/v1/balance",
        "/api/v1/balance/breakdown",
        "/api/v1/transactions",
    ):
        assert client.get(path).status_code in (401, 403)


def test_openapi_schema_and_docs_are_served(db):
    client = APIClient()
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    for path in (
        "/api/v1/balance",
        "/api/v1/balance/breakdown",
        "/api/v1/transactions",
    ):
        assert path in text
    assert client.get("/api/docs/").status_code == 200
