"""The local test payments mode (STRIPE_LOCAL=1): settings point at a local
Stripe with test keys, `serve`'s local Stripe takes the whole flow (a card, a
top-up with its bonus and invoice, auto top-up, the webhook), and the console
says that no real money moves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from djstripe.models import Event

from billing.ledger.debits import balance_debit
from billing.ledger.selectors import balance_get
from billing.models import TopUp, TopUpStatus
from billing.payments import localstripe as local
from billing.payments import stripe_gateway as gateway
from billing.payments.localstripe import local_stripe_serve
from billing.payments.services import autotopup_configure, autotopup_run
from invoices.models import Invoice
from money import usd_to_nanos
from tests.support.payments import browser_card_confirm, with_profile
from tests.support.platform import database_url, free_port

BANNER = "Test payments — no real money."
SETTINGS_READ = """
import json
import django
django.setup()
from django.conf import settings
from billing.payments.stripe_gateway import stripe_configured
print(json.dumps({
    name: getattr(settings, name)
    for name in ("STRIPE_LOCAL", "STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY",
                 "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE", "STRIPE_JS_URL",
                 "STRIPE_LIVE_MODE")
} | {"configured": stripe_configured()}))
"""


def settings_of_a_process(env: dict) -> dict:
    """Django's settings as a fresh process with ``env`` reads them."""
    from django.db import connection

    answer = subprocess.run(  # noqa: S603 (our own code)
        [sys.executable, "-c", SETTINGS_READ],
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "agipower.settings",
            "DATABASE_URL": database_url(connection.settings_dict),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(answer.stdout.strip().splitlines()[-1])


@pytest.fixture
def local_mode(settings, live_server, tmp_path):
    """The settings of a process started with STRIPE_LOCAL=1, applied here, and
    the local Stripe that `serve` starts in that mode, posting to this test's
    server."""
    port = free_port()
    read = settings_of_a_process({"STRIPE_LOCAL": "1", "STRIPE_LOCAL_PORT": str(port)})
    for name, value in read.items():
        if name.isupper():
            setattr(settings, name, value)
    server = local_stripe_serve(
        port=port,
        state=tmp_path / "localstripe.pickle",
        webhook_url=live_server.url + local.WEBHOOK_PATH,
    )
    yield server
    server.deliveries_wait()
    server.stop()


def test_stripe_local_points_every_setting_at_the_local_stripe(db):
    port = free_port()
    read = settings_of_a_process(
        {
            "STRIPE_LOCAL": "1",
            "STRIPE_LOCAL_PORT": str(port),
            # Keys in the environment do not leak into the test mode.
            "STRIPE_SECRET_KEY": "sk_live_" + "x" * 24,
            "STRIPE_API_BASE": "https://api.stripe.com",
        }
    )
    assert read == {
        "STRIPE_LOCAL": True,
        "STRIPE_SECRET_KEY": local.SECRET_KEY,
        "STRIPE_PUBLISHABLE_KEY": local.PUBLISHABLE_KEY,
        "STRIPE_WEBHOOK_SECRET": local.WEBHOOK_SECRET,
        "STRIPE_API_BASE": f"http://127.0.0.1:{port}",
        "STRIPE_JS_URL": f"http://127.0.0.1:{port}/js.stripe.com/v3/",
        "STRIPE_LIVE_MODE": False,
        "configured": True,
    }
    plain = settings_of_a_process({"STRIPE_LOCAL": "", "STRIPE_SECRET_KEY": ""})
    assert plain["STRIPE_LOCAL"] is False and plain["configured"] is False


@pytest.mark.django_db(transaction=True)
def test_the_whole_payment_flow_works_against_the_local_stripe(bob, client, local_mode):
    with_profile(bob)
    client.force_login(bob)
    page = client.get("/console/billing").content.decode()
    assert BANNER in page
    assert f'data-stripe-js="{local_mode.js_url}"' in page
    with urllib.request.urlopen(local_mode.js_url, timeout=10) as js:  # noqa: S310
        assert js.status == 200 and b"Stripe" in js.read()

    # A card saved as the console saves it (Stripe.js's stand-in does this).
    intent = gateway.setup_intent_create(account=bob.account)
    pm = browser_card_confirm(local_mode, intent)["payment_method"]
    assert [card.id for card in gateway.cards_list(account=bob.account)] == [pm]

    started = client.post(
        "/api/v1/top-ups",
        {"amount": "100", "payment_method": pm},
        content_type="application/json",
    )
    assert started.status_code == 201, started.content
    assert started.json()["status"] == "succeeded"
    topup = TopUp.objects.get()
    assert balance_get(account=bob.account).total_nanos == usd_to_nanos("120")
    assert topup.invoice == Invoice.objects.get()
    # The local Stripe's signed webhook reaches the platform (and credits
    # nothing more).
    deadline = time.monotonic() + 8
    while not Event.objects.filter(
        type="payment_intent.succeeded",
        data__object__id=topup.payment_intent_id,
    ).exists():
        assert time.monotonic() < deadline, "no webhook from the local Stripe"
        time.sleep(0.1)
    assert balance_get(account=bob.account).total_nanos == usd_to_nanos("120")

    # Auto top-up with the saved card.
    autotopup_configure(
        account=bob.account,
        enabled=True,
        threshold_nanos=usd_to_nanos("10"),
        amount_nanos=usd_to_nanos("25"),
        payment_method_id=pm,
    )
    balance_debit(
        account=bob.account, amount_nanos=usd_to_nanos("115"), idempotency_key="use"
    )
    assert autotopup_run(account_id=bob.account.pk).status == TopUpStatus.SUCCEEDED
    assert balance_get(account=bob.account).total_nanos == usd_to_nanos("35")
    assert Invoice.objects.count() == 2

    # Restarted (as `scripts/run` is), the local Stripe still knows the card.
    local_mode.stop()
    local_mode.start()
    assert [card.id for card in gateway.cards_list(account=bob.account)] == [pm]


def test_the_console_says_payments_are_tests_only_in_that_mode(client, alice, settings):
    client.force_login(alice)
    settings.STRIPE_LOCAL = False
    assert BANNER not in client.get("/console/pay-as-you-go").content.decode()
    settings.STRIPE_LOCAL = True
    for url in ("/console/pay-as-you-go", "/console/billing", "/console/keys"):
        page = client.get(url).content.decode()
        assert BANNER in page, url
        assert 'data-testid="test-payments-banner"' in page
