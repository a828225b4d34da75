"""The history's "Request refund" on a fresh top-up: a confirmation with the
amount and the fee, the refund against localstripe, and its status in the
history afterwards; never on another account's top-up."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from billing.ledger.reconciliation import ledger_check
from billing.ledger.selectors import balance_get
from billing.models import SelfRefund, SelfRefundStatus, TopUp
from money import usd_to_nanos
from tests.support.payments import with_profile

pytestmark = pytest.mark.django_db(transaction=True)

PAYG = reverse("console:payg")


def paid_top_up(user, card_save, amount: str = "100") -> TopUp:
    with_profile(user)
    card = card_save(user.account)
    client = APIClient()
    client.force_login(user)
    response = client.post(
        "/api/v1/top-ups", {"amount": amount, "payment_method": card.id}, format="json"
    )
    assert response.status_code == 201, response.content
    return TopUp.objects.get(pk=response.json()["id"])


def refund_url(topup: TopUp) -> str:
    return reverse("console:topup-refund", args=[topup.pk])


def test_a_fresh_top_up_offers_a_refund_confirmed_with_its_amount_and_fee(
    client, bob, card_save, stripe_settings
):
    topup = paid_top_up(bob, card_save)
    client.force_login(bob)

    history = client.get(PAYG).content.decode()
    assert 'data-testid="refund-link"' in history
    assert refund_url(topup) in history

    confirm = client.get(refund_url(topup)).content.decode()
    assert 'data-testid="refund-amount">$95.00<' in confirm
    assert 'data-testid="refund-fee">−$5.00<' in confirm
    assert "Fee (5%)" in confirm and "bonus is forfeited" in confirm

    response = client.post(refund_url(topup), follow=True)

    assert response.redirect_chain == [(PAYG, 302)]
    page = response.content.decode()
    assert "Refund of $95.00 requested" in page
    assert 'data-testid="refund-status">Refund: Refunding<' in page
    # In progress: not offered again.
    assert 'data-testid="refund-link"' not in page
    assert SelfRefund.objects.get().status == SelfRefundStatus.REFUNDING
    assert balance_get(account=bob.account).total_nanos == 0
    assert ledger_check() == []


def test_a_second_confirmation_is_refused_while_the_first_is_in_progress(
    client, bob, card_save, stripe_settings
):
    topup = paid_top_up(bob, card_save)
    client.force_login(bob)
    client.post(refund_url(topup))
    page = client.post(refund_url(topup), follow=True).content.decode()
    assert "already in progress" in page
    assert SelfRefund.objects.count() == 1


def test_an_old_top_up_offers_no_refund(client, bob, card_save, stripe_settings):
    topup = paid_top_up(bob, card_save)
    TopUp.objects.filter(pk=topup.pk).update(
        succeeded_at=timezone.now() - timedelta(hours=25)
    )
    client.force_login(bob)
    assert 'data-testid="refund-link"' not in client.get(PAYG).content.decode()
    confirm = client.get(refund_url(topup)).content.decode()
    assert "within 24 hours" in confirm and "refund-confirm" not in confirm
    page = client.post(refund_url(topup), follow=True).content.decode()
    assert "The refund was not made" in page
    assert not SelfRefund.objects.exists()
    assert balance_get(account=bob.account).total_nanos == usd_to_nanos("120")


def test_another_accounts_top_up_is_404(client, alice, bob, card_save, stripe_settings):
    topup = paid_top_up(bob, card_save)
    client.force_login(alice)
    assert client.get(refund_url(topup)).status_code == 404
    assert client.post(refund_url(topup)).status_code == 404
    assert not SelfRefund.objects.exists()
