"""The console: the AI Insurance page (summary, by rule and model, covered
requests, claims with their outcome) and the claim form on a request's page
in Logs."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import LedgerEntry
from insurance.models import Claim
from insurance.services import claim_decline, insurance_day_pay
from tests.support.keys import make_key, make_log
from tests.support.pages import texts


@pytest.fixture
def console(client, alice):
    client.force_login(alice)
    return client


def test_the_page_shows_what_was_paid_back(console, alice, bob):
    yesterday = (timezone.now() - timedelta(days=1)).replace(hour=12)
    key = make_key(alice)
    log = make_log(key, at=yesterday, completion_tokens=0, cost_nanos=1_500_000)
    make_log(
        key, at=yesterday, streamed=True, status=502, ttft_ms=10, cost_nanos=500_000
    )
    make_log(make_key(bob), at=yesterday, completion_tokens=0, cost_nanos=9_000_000)
    insurance_day_pay(day=yesterday.date())
    response = console.get("/console/insurance")
    assert response.status_code == 200
    assert texts(response, "insurance-total") == ["$0.0020"]
    assert texts(response, "insurance-count") == ["2"]
    assert texts(response, "insurance-average") == ["$0.0010"]
    assert len(texts(response, "insurance-payout")) == 2
    assert str(log.id)[:13] in texts(response, "insurance-payouts")[0]
    assert "Empty output1$0.001500" in texts(response, "insurance-by-rule")[0]
    assert "openai/gpt-52$0.002000" in texts(response, "insurance-by-model")[0]
    assert b'aria-current="page"' in response.content


def test_a_claim_from_the_request_page_and_its_outcome(console, alice, ops):
    log = make_log(make_key(alice), cost_nanos=2_000)
    page = console.get(f"/console/logs/{log.id}")
    assert texts(page, "claim-form")
    response = console.post(f"/console/insurance/claim/{log.id}", {"reason": ""})
    assert response.status_code == 302
    assert not Claim.objects.exists()
    response = console.post(
        f"/console/insurance/claim/{log.id}", {"reason": "Wrong answer"}, follow=True
    )
    assert "Claim sent" in response.content.decode()
    assert texts(response, "log-claim-status") == ["Under review"]
    assert not texts(response, "claim-form")
    claim_decline(
        claim_id=Claim.objects.get().pk, actor=ops, reason="Answer was correct."
    )
    page = console.get(f"/console/logs/{log.id}")
    assert texts(page, "log-claim-status") == ["Declined"]
    assert texts(page, "log-claim-decision") == ["Answer was correct."]
    page = console.get("/console/insurance")
    assert texts(page, "claim-status") == ["Declined"]
    assert texts(page, "claim-outcome") == ["Answer was correct."]


def test_no_claim_form_after_7_days_nor_on_anothers_request(console, alice, bob):
    old = make_log(make_key(alice), at=timezone.now() - timedelta(days=8))
    assert not texts(console.get(f"/console/logs/{old.id}"), "claim-form")
    bobs = make_log(make_key(bob))
    response = console.post(f"/console/insurance/claim/{bobs.id}", {"reason": "x"})
    assert response.status_code == 404


def test_the_history_names_the_payout_insurance(console, alice):
    yesterday = (timezone.now() - timedelta(days=1)).replace(hour=12)
    make_log(make_key(alice), at=yesterday, completion_tokens=0, cost_nanos=1_500_000)
    insurance_day_pay(day=yesterday.date())
    rows = texts(console.get("/console/pay-as-you-go"), "transaction-row")
    (row,) = [row for row in rows if "AI insurance:" in row]
    assert "Insurance AI insurance" in row
    assert f"AI insurance: 1 covered request on {yesterday.date()}" in row


def test_the_history_links_a_payout_to_the_requests_it_covered(console, alice):
    yesterday = (timezone.now() - timedelta(days=1)).replace(hour=12)
    log = make_log(
        make_key(alice), at=yesterday, completion_tokens=0, cost_nanos=1_500_000
    )
    insurance_day_pay(day=yesterday.date())
    entry = LedgerEntry.objects.get(account=alice.account, method="AI insurance")
    page = console.get("/console/pay-as-you-go").content.decode()
    (link,) = re.findall(r'<a href="([^"]+)" data-testid="covered-link"', page)
    link = link.replace("&amp;", "&")
    assert link == f"/console/insurance?entry={entry.pk}"
    covered = console.get(link)
    assert covered.status_code == 200
    assert str(log.id) in covered.content.decode()
