"""Claims: filed by the customer through ``POST /api/v1/requests/{id}/claim``
on their own requests within 7 days, once per request; accepted (paid once,
at once) or declined with a reason in admin; the outcome seen by the customer
in the API. A request is never paid twice, by the daily run and a claim."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import CreditLot, EntryKind, LedgerEntry, LotSource
from insurance.errors import ClaimDecided
from insurance.models import Claim, ClaimStatus, Payout
from insurance.services import claim_accept, claim_decline, insurance_day_pay
from tests.support.keys import make_key, make_log
from tests.support.ledger import assert_ledger_whole, wallet_of

COST = 1_234_567


@pytest.fixture
def api(alice) -> APIClient:
    client = APIClient()
    client.force_login(alice)
    return client


@pytest.fixture
def log(alice):
    return make_log(make_key(alice), cost_nanos=COST)


def claim(api, log, reason="The answer was wrong"):
    return api.post(
        f"/api/v1/requests/{log.id}/claim", {"reason": reason}, format="json"
    )


def test_a_claim_is_filed_and_pending(api, alice, log):
    response = claim(api, log)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["request_id"] == str(log.id)
    assert (body["status"], body["cost"], body["payout"]) == (
        "pending",
        "0.001234567",
        None,
    )
    assert body["reason"] == "The answer was wrong"
    assert api.get(f"/api/v1/requests/{log.id}/claim").json()["status"] == "pending"


def test_a_second_claim_on_a_request_is_a_409(api, log):
    assert claim(api, log).status_code == 201
    response = claim(api, log, "again")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "claim_exists"
    assert "already been claimed" in response.json()["error"]["message"]
    assert Claim.objects.count() == 1


def test_a_claim_needs_a_reason(api, log):
    for body in ({}, {"reason": ""}, {"reason": "   "}):
        response = api.post(f"/api/v1/requests/{log.id}/claim", body, format="json")
        assert response.status_code == 400
        assert "reason" in response.json()
    assert not Claim.objects.exists()


def test_a_claim_after_7_days_is_a_400(api, alice):
    key = make_key(alice)
    old = make_log(key, at=timezone.now() - timedelta(days=7, minutes=1))
    recent = make_log(key, at=timezone.now() - timedelta(days=6, hours=23))
    response = claim(api, old)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "claim_window_closed"
    assert claim(api, recent).status_code == 201


def test_another_accounts_request_is_a_404(api, bob):
    bobs = make_log(make_key(bob))
    assert claim(api, bobs).status_code == 404
    assert api.get(f"/api/v1/requests/{bobs.id}/claim").status_code == 404
    assert (
        api.post("/api/v1/requests/not-a-uuid/claim", {"reason": "x"}).status_code
        == 404
    )
    assert not Claim.objects.exists()


def test_a_free_request_cannot_be_claimed(api, alice):
    free = make_log(make_key(alice), cost_nanos=0, status=400)
    response = claim(api, free)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "nothing_to_compensate"


def test_an_accepted_claim_is_paid_once_at_once(api, alice, ops, log):
    claim_id = claim(api, log).json()["id"]
    before = wallet_of(alice.account)
    claim_accept(claim_id=claim_id, actor=ops)
    with pytest.raises(ClaimDecided):
        claim_accept(claim_id=claim_id, actor=ops)
    entry = LedgerEntry.objects.get(
        account=alice.account, idempotency_key=f"claim:{claim_id}"
    )
    assert (entry.kind, entry.amount_nanos, entry.method) == (
        EntryKind.COMPENSATION,
        COST,
        "AI insurance",
    )
    assert entry.actor == ops
    assert CreditLot.objects.get(entry=entry).source == LotSource.COMPENSATION
    assert wallet_of(alice.account)[1] == before[1] + COST
    body = api.get(f"/api/v1/requests/{log.id}/claim").json()
    assert (body["status"], body["payout"]) == ("accepted", "0.001234567")
    assert_ledger_whole(alice.account)


def test_the_daily_run_skips_a_request_paid_by_an_accepted_claim(api, alice, ops):
    yesterday = (timezone.now() - timedelta(days=1)).replace(hour=12)
    key = make_key(alice)
    claimed = make_log(key, at=yesterday, completion_tokens=0, cost_nanos=COST)
    make_log(key, at=yesterday, completion_tokens=0, cost_nanos=1_000)
    claim_accept(claim_id=claim(api, claimed).json()["id"], actor=ops)
    (entry,) = insurance_day_pay(day=yesterday.date())
    assert entry.amount_nanos == 1_000  # the other request only
    assert Payout.objects.filter(request_id=claimed.id).count() == 1
    assert (
        sum(
            LedgerEntry.objects.filter(
                account=alice.account, kind=EntryKind.COMPENSATION
            ).values_list("amount_nanos", flat=True)
        )
        == COST + 1_000
    )
    assert_ledger_whole(alice.account)


def test_a_claim_on_a_request_paid_by_the_daily_run_pays_nothing_more(api, alice, ops):
    yesterday = (timezone.now() - timedelta(days=1)).replace(hour=12)
    log = make_log(make_key(alice), at=yesterday, completion_tokens=0, cost_nanos=COST)
    # Claimed before the run; the run pays it; accepting then pays nothing.
    claim_id = claim(api, log).json()["id"]
    (entry,) = insurance_day_pay(day=yesterday.date())
    assert entry.amount_nanos == COST
    claim_accept(claim_id=claim_id, actor=ops)
    assert (
        LedgerEntry.objects.filter(account=alice.account, kind="compensation").count()
        == 1
    )
    accepted = Claim.objects.get(pk=claim_id)
    assert accepted.status == ClaimStatus.ACCEPTED
    assert "Already compensated" in accepted.decision_reason
    assert api.get(f"/api/v1/requests/{log.id}/claim").json()["payout"] == "0.001234567"
    # Paid already: no new claim on it.
    other = make_log(make_key(alice), at=yesterday, completion_tokens=0, cost_nanos=5)
    insurance_day_pay(day=yesterday.date())  # day paid already: nothing more
    assert claim(api, other).status_code == 201
    assert_ledger_whole(alice.account)


def test_a_request_paid_automatically_cannot_be_claimed(api, alice):
    yesterday = (timezone.now() - timedelta(days=1)).replace(hour=12)
    log = make_log(make_key(alice), at=yesterday, completion_tokens=0, cost_nanos=COST)
    insurance_day_pay(day=yesterday.date())
    response = claim(api, log)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_compensated"


def test_a_declined_claim_shows_its_reason_and_pays_nothing(api, alice, ops, log):
    claim_id = claim(api, log).json()["id"]
    before = wallet_of(alice.account)
    claim_decline(claim_id=claim_id, actor=ops, reason="The answer matched the prompt.")
    assert wallet_of(alice.account) == before
    body = api.get(f"/api/v1/requests/{log.id}/claim").json()
    assert (body["status"], body["decision_reason"], body["payout"]) == (
        "declined",
        "The answer matched the prompt.",
        None,
    )
    listed = api.get("/api/v1/insurance").json()["claims"]
    assert listed["count"] == 1
    assert listed["results"][0]["decision_reason"] == "The answer matched the prompt."
    assert (
        api.get("/api/v1/insurance/claims").json()["results"][0]["status"] == "declined"
    )
    with pytest.raises(ClaimDecided):
        claim_accept(claim_id=claim_id, actor=ops)
    assert_ledger_whole(alice.account)


def test_operators_decide_in_admin_with_a_reason_to_decline(client, ops, api, alice):
    key = make_key(alice)
    first, second = make_log(key, cost_nanos=COST), make_log(key, cost_nanos=COST)
    one = claim(api, first).json()["id"]
    two = claim(api, second).json()["id"]
    client.force_login(ops)
    url = "/admin/insurance/claim/"
    response = client.post(
        url, {"action": "accept_selected", "_selected_action": [one]}
    )
    assert response.status_code == 302
    # Declining asks for the reason first; without one, nothing is declined.
    response = client.post(
        url, {"action": "decline_selected", "_selected_action": [two]}
    )
    assert response.status_code == 200
    assert b"Decline" in response.content
    response = client.post(
        url,
        {
            "action": "decline_selected",
            "_selected_action": [two],
            "apply": "1",
            "reason": "",
        },
    )
    assert Claim.objects.get(pk=two).status == ClaimStatus.PENDING
    response = client.post(
        url,
        {
            "action": "decline_selected",
            "_selected_action": [two],
            "apply": "1",
            "reason": "Not an error of the service.",
        },
    )
    assert response.status_code == 302
    assert Claim.objects.get(pk=one).status == ClaimStatus.ACCEPTED
    declined = Claim.objects.get(pk=two)
    assert (declined.status, declined.decision_reason, declined.decided_by) == (
        ClaimStatus.DECLINED,
        "Not an error of the service.",
        ops,
    )
    assert Payout.objects.get().claim_id == one
    for page in (
        "/admin/insurance/claim/",
        f"/admin/insurance/claim/{one}/change/",
        "/admin/insurance/payout/",
        "/admin/insurance/coveragerule/",
    ):
        assert client.get(page).status_code == 200, page
    assert_ledger_whole(alice.account)
