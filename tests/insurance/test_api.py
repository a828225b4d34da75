"""``GET /api/v1/insurance``: the summary, the covered requests page by page,
and the latest claims; each account sees only its own."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from insurance.services import insurance_day_pay
from tests.support.keys import bearer, make_key, make_log


@pytest.fixture
def api(alice) -> APIClient:
    client = APIClient()
    client.force_login(alice)
    return client


def test_the_summary_payouts_and_claims(api, alice, bob):
    yesterday = (timezone.now() - timedelta(days=1)).replace(hour=12)
    key = make_key(alice)
    empty = make_log(
        key,
        at=yesterday - timedelta(hours=1),
        completion_tokens=0,
        cost_nanos=3_000_000,
    )
    make_log(key, at=yesterday, latency_ms=700_000, cost_nanos=1_000_001)
    make_log(make_key(bob), at=yesterday, completion_tokens=0, cost_nanos=7)
    (entry,) = [
        e
        for e in insurance_day_pay(day=yesterday.date())
        if e.account_id == alice.account.pk
    ]
    claimed = make_log(key, cost_nanos=5)
    api.post(f"/api/v1/requests/{claimed.id}/claim", {"reason": "bad"}, format="json")

    response = api.get("/api/v1/insurance?limit=1")
    assert response.status_code == 200
    body = response.json()
    assert (body["total_compensation"], body["count"], body["average_payout"]) == (
        "0.004000001",
        2,
        "0.002000000",
    )
    assert body["by_rule"] == [
        {
            "count": 1,
            "total": "0.003000000",
            "rule": "empty_output",
            "label": "Empty output",
        },
        {
            "count": 1,
            "total": "0.001000001",
            "rule": "high_latency",
            "label": "High latency",
        },
    ]
    assert body["by_model"] == [
        {"count": 2, "total": "0.004000001", "model": "openai/gpt-5"}
    ]
    payouts = body["payouts"]
    assert payouts["count"] == 2 and payouts["next"] and payouts["previous"] is None
    (first,) = payouts["results"]
    assert set(first) == {
        "request_id",
        "request_created_at",
        "model",
        "rule",
        "rule_label",
        "cost",
        "payout_percent",
        "payout",
        "paid_at",
        "transaction_id",
    }
    second = api.get(payouts["next"]).json()["payouts"]["results"][0]
    assert (second["request_id"], second["rule"], second["payout"]) == (
        str(empty.id),
        "empty_output",
        "0.003000000",
    )
    assert second["transaction_id"] == str(entry.id)
    assert body["claims"]["count"] == 1
    assert body["claims"]["results"][0]["request_id"] == str(claimed.id)


def test_a_management_key_reads_it_and_an_empty_account_has_zeros(bob):
    from apikeys.models import KeyKind

    created = make_key(bob, kind=KeyKind.MANAGEMENT)
    body = bearer(created.secret).get("/api/v1/insurance").json()
    assert (body["total_compensation"], body["count"], body["average_payout"]) == (
        "0.000000000",
        0,
        "0.000000000",
    )
    assert body["payouts"]["results"] == [] and body["claims"]["results"] == []


def test_the_schema_documents_the_insurance_operations(api):
    schema = api.get("/api/schema/?format=json").json()
    assert "/api/v1/insurance" in schema["paths"]
    claim = schema["paths"]["/api/v1/requests/{log_id}/claim"]
    assert set(claim) >= {"get", "post"}
    assert "409" in claim["post"]["responses"]
