"""The console's payment pages: signed in only, the account's own data only,
and Stripe.js with the publishable key (never the secret one)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.services import billing_profile_save
from billing.models import AutoTopUp, TopUp, TopUpMethod
from billing.payments.localstripe import PUBLISHABLE_KEY, SECRET_KEY, WEBHOOK_SECRET
from money import usd_to_nanos

pytestmark = pytest.mark.django_db

BILLING = reverse("console:billing")
CONFIG = reverse("console:payments-config")
PAYG = reverse("console:payg")


@pytest.fixture
def no_stripe(settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_PUBLISHABLE_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = ""
    return settings


def profile_for(user, name: str, **fields):
    values = {
        "name": name,
        "country": "US",
        "address_line1": "1 Market Street",
        "address_line2": "",
        "city": "San Francisco",
        "state": "CA",
        "postal_code": "94105",
        "tax_id": "",
        **fields,
    }
    return billing_profile_save(account=user.account, **values)


def topup_for(user, amount: str = "100") -> TopUp:
    nanos = usd_to_nanos(amount)
    return TopUp.objects.create(
        account=user.account,
        amount_nanos=nanos,
        bonus_nanos=nanos // 5,
        method=TopUpMethod.ALIPAY,
    )


@pytest.mark.parametrize(
    "url",
    [BILLING, CONFIG, reverse("console:topup-return", args=[1])],
)
def test_pages_need_a_signed_in_customer(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_billing_page_renders_with_stripe_js_and_the_publishable_key_only(
    client, alice, stripe_settings, localstripe
):
    client.force_login(alice)
    response = client.get(BILLING)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Billing</h1>" in html
    assert 'aria-current="page"' in html and ">Billing</span>" in html
    assert f'data-stripe-key="{PUBLISHABLE_KEY}"' in html
    assert f'data-stripe-js="{localstripe.js_url}"' in html
    assert 'data-configured="true"' in html
    assert 'data-bonus-rate="0.20"' in html
    assert "js/console-payments.js" in html
    # The dialogs are on the page, with the words the product page uses.
    for words in ("Top Up", "Auto Top-Up", "Billing details", "Add a card"):
        assert words in html
    assert "I authorize AGIPower to charge this card automatically" in html
    # Secrets never reach a page.
    assert SECRET_KEY not in html
    assert WEBHOOK_SECRET not in html
    # No billing details yet: the page says they are needed.
    assert "needed before your first top-up" in html


def test_billing_page_says_when_payments_are_not_configured(client, alice, no_stripe):
    client.force_login(alice)
    html = client.get(BILLING).content.decode()
    assert 'data-configured="false"' in html
    assert "Payments are not configured on this server" in html
    assert 'data-stripe-key=""' in html
    top_up = html.split('data-testid="top-up-button"')[1].split(">")[0]
    assert "disabled" in top_up


def test_config_tells_the_dialogs_what_they_need(client, alice, stripe_settings):
    client.force_login(alice)
    body = client.get(CONFIG).json()
    assert body == {
        "configured": True,
        "publishable_key": PUBLISHABLE_KEY,
        "js_url": stripe_settings.STRIPE_JS_URL,
        "bonus_rate": "0.20",
        "min_amount": "$5.00",
        "max_amount": "$25,000.00",
    }
    assert SECRET_KEY not in client.get(CONFIG).content.decode()


def test_config_without_stripe(client, alice, no_stripe):
    client.force_login(alice)
    body = client.get(CONFIG).json()
    assert body["configured"] is False
    assert body["publishable_key"] == ""
    assert body["js_url"] == ""


def test_pay_as_you_go_has_the_buttons_top_right_and_the_dialogs(client, alice):
    client.force_login(alice)
    html = client.get(PAYG).content.decode()
    head = html.split('<div class="page-head page-head--actions">')[1].split(
        '<section class="balances"'
    )[0]
    assert 'data-testid="auto-top-up-button"' in head
    assert 'data-testid="top-up-button"' in head
    assert head.index("Auto Top-Up") < head.index("Top Up\n")
    assert 'data-testid="payments-status"' in html
    assert 'id="topup-dialog"' in html
    assert 'id="autotopup-dialog"' in html
    assert 'id="profile-dialog"' in html
    # Its view passes no Stripe settings: the dialogs ask for them.
    assert f'data-config-url="{CONFIG}"' in html
    assert "js/console-payments.js" in html
    assert f'href="{BILLING}"' in html


def test_billing_page_shows_the_own_profile_and_never_another_accounts(
    client, alice, bob, no_stripe
):
    profile_for(alice, "Alice Research Ltd", tax_id="GB123456789")
    profile_for(bob, "Bob Secret Holdings", address_line1="99 Hidden Lane")
    client.force_login(alice)
    html = client.get(BILLING).content.decode()
    assert "Alice Research Ltd" in html
    assert "GB123456789" in html
    assert "Bob Secret Holdings" not in html
    assert "99 Hidden Lane" not in html

    client.force_login(bob)
    html = client.get(BILLING).content.decode()
    assert "Bob Secret Holdings" in html
    assert "Alice Research Ltd" not in html


def test_billing_page_shows_auto_top_up_and_why_it_is_paused(
    client, alice, bob, no_stripe
):
    AutoTopUp.objects.create(
        account=alice.account,
        enabled=True,
        threshold_nanos=usd_to_nanos("10"),
        amount_nanos=usd_to_nanos("100"),
        payment_method_id="pm_alice",
    )
    AutoTopUp.objects.create(
        account=bob.account,
        enabled=True,
        threshold_nanos=usd_to_nanos("25"),
        amount_nanos=usd_to_nanos("250"),
        payment_method_id="pm_bob",
        paused_reason="the card was declined (card_declined): Bob's bank said no",
        paused_at=timezone.now(),
    )
    client.force_login(alice)
    html = client.get(BILLING).content.decode()
    assert "Tops up $100.00 when your balance falls below $10.00" in html
    assert "Bob&#x27;s bank said no" not in html and "$250.00" not in html

    client.force_login(bob)
    html = client.get(BILLING).content.decode()
    assert "Paused" in html
    assert "The card was declined (card_declined): Bob&#x27;s bank said no." in html
    assert "Save the settings again to resume" in html


def test_return_page_shows_only_the_own_top_up(client, alice, bob):
    mine = topup_for(alice, "100")
    theirs = topup_for(bob, "500")
    client.force_login(alice)

    response = client.get(reverse("console:topup-return", args=[mine.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Top-up of $100.00" in html
    assert "$120.00" in html
    assert f'data-topup-return="/api/v1/top-ups/{mine.pk}"' in html
    # It checks with the server; nothing on the page credits anything.
    assert "Checking your payment with Stripe" in html

    response = client.get(reverse("console:topup-return", args=[theirs.pk]))
    assert response.status_code == 404
    assert b"$500.00" not in response.content


def test_return_page_ignores_what_the_redirect_says(client, alice):
    topup = topup_for(alice, "100")
    client.force_login(alice)
    url = reverse("console:topup-return", args=[topup.pk])
    response = client.get(
        url + "?payment_intent=pi_fake&redirect_status=succeeded"
        "&payment_intent_client_secret=pi_fake_secret_x"
    )
    assert response.status_code == 200
    topup.refresh_from_db()
    assert topup.status == "created"
    assert alice.account.wallet.topup_nanos == 0


def test_operators_have_a_billing_page_of_their_own(client, ops, alice):
    # Every user has a billing account, operators made by createsuperuser too.
    topup = topup_for(alice)
    client.force_login(ops)
    assert client.get(BILLING).status_code == 200
    assert client.get(CONFIG).status_code == 200
    # Never another account's top-up.
    url = reverse("console:topup-return", args=[topup.pk])
    assert client.get(url).status_code == 404


def test_the_script_and_styles_are_served(client, alice):
    from django.contrib.staticfiles import finders

    script = finders.find("js/console-payments.js")
    assert script
    text = Path(script).read_text(encoding="utf-8")
    assert "confirmCardSetup" in text and "confirmCardPayment" in text
    assert "X-CSRFToken" in text
    css = Path(finders.find("css/app.css")).read_text(encoding="utf-8")
    assert ".modal::backdrop" in css
