"""In Chromium, against localstripe and its Stripe.js stand-in: a new customer
fills in the billing details asked for before the first top-up, saves a card
in the Top Up dialog (a SetupIntent confirmed by Stripe.js), tops up $100 and
sees $120.00; the webhook arrives too, and the ledger credits it once. Then
the card is on the Billing page and Auto Top-Up is set up with consent."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from djstripe.models import Event

from accounts.models import BillingProfile
from accounts.services import billing_profile_save, user_signup
from billing.models import AutoTopUp, EntryKind, LedgerEntry, TopUp
from money import usd_to_nanos
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, in_own_thread
from tests.support.world import PASSWORD

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", "/tmp"))  # noqa: S108
EMAIL = "carol@example.com"
VISA = "4242424242424242"
MASTERCARD = "5555555555554444"
THREE_D_SECURE = "4000002500003155"
DECLINED = "4000000000000341"  # saved fine, then every charge is declined
EXP_YEAR = str(datetime.now(UTC).year + 3)[-2:]  # the stand-in prefixes "20"


def _browse(base_url: str, steps) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, base_url=base_url
        )
        page = context.new_page()
        page.set_default_timeout(15_000)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            steps(page)
        finally:
            browser.close()
            connection.close()
        assert not errors, errors


def _sign_in(page) -> None:
    from playwright.sync_api import expect

    page.goto("/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Pay As You Go", level=1)).to_be_visible()


def _type_card(page, container: str, number: str) -> None:
    """localstripe's stand-in card Element: plain inputs named by placeholder."""
    element = page.locator(container)
    element.locator("input[placeholder=number]").fill(number)
    element.locator("input[placeholder=exp_month]").fill("12")
    element.locator("input[placeholder=exp_year]").fill(EXP_YEAR)
    element.locator("input[placeholder=cvc]").fill("123")
    element.locator("input[placeholder=postal_code]").fill("94105")


def _top_up_with_a_new_card(page) -> None:
    from playwright.sync_api import expect

    _sign_in(page)
    expect(page.get_by_test_id("balance-total")).to_have_text("$0.00")
    expect(page.get_by_test_id("autotopup-status")).to_contain_text("Off")
    expect(page.get_by_test_id("default-card-status")).to_have_text("No saved card")
    page.screenshot(path=str(SCREENSHOTS / "topup-payg-before.png"), full_page=True)

    # Top Up asks for the billing details first (there are none yet).
    page.get_by_role("button", name="Top Up", exact=True).click()
    profile = page.get_by_test_id("profile-dialog")
    expect(profile).to_be_visible()
    expect(profile).to_contain_text("Before your first top-up")
    profile.get_by_label("Full name or company").fill("Carol Analytics GmbH")
    profile.get_by_label("Country").fill("de")
    expect(profile).to_contain_text("Germany")
    profile.get_by_label("Address", exact=True).fill("Unter den Linden 1")
    profile.get_by_label("City").fill("Berlin")
    profile.get_by_label("Postal code").fill("10117")
    profile.get_by_label("Tax ID").fill("DE123456789")
    page.screenshot(path=str(SCREENSHOTS / "topup-profile.png"))
    profile.get_by_role("button", name="Save billing details").click()
    expect(profile).to_be_hidden()

    # The Top Up dialog: $100 preset, the bonus shown before paying.
    dialog = page.get_by_test_id("topup-dialog")
    expect(dialog).to_be_visible()
    summary = dialog.get_by_test_id("topup-summary")
    expect(summary).to_contain_text("You receive $120.00: $100.00 + $20.00 bonus")
    dialog.get_by_text("$500", exact=True).click()
    expect(summary).to_contain_text("You receive $600.00: $500.00 + $100.00 bonus")
    dialog.get_by_text("Custom", exact=True).click()
    dialog.get_by_label("Custom amount").fill("3")
    expect(summary).to_contain_text("Enter an amount from $5.00 to $25,000.00")
    dialog.get_by_label("Custom amount").fill("250.50")
    expect(summary).to_contain_text("You receive $300.60: $250.50 + $50.10 bonus")
    dialog.get_by_text("$100", exact=True).click()
    expect(summary).to_contain_text("You receive $120.00")

    # No saved card yet: the card Element is in the dialog.
    expect(dialog.get_by_test_id("card-element").locator("input")).to_have_count(5)
    _type_card(page, "#topup-card-element", VISA)
    pay = dialog.get_by_test_id("topup-pay")
    expect(pay).to_have_text("Save card & pay $100.00")
    page.screenshot(path=str(SCREENSHOTS / "topup-dialog.png"))
    pay.click()

    result = dialog.get_by_test_id("topup-result")
    expect(result).to_be_visible()
    expect(result).to_contain_text("Payment received")
    expect(result).to_contain_text(
        "$120.00 added to your balance: $100.00 + $20.00 bonus."
    )
    # The balances behind the dialog are already new.
    expect(page.get_by_test_id("balance-total")).to_have_text("$120.00")
    page.screenshot(path=str(SCREENSHOTS / "topup-success.png"))

    # Done: the page reloads with the new balances and history.
    dialog.get_by_test_id("topup-done").click()
    expect(page.get_by_test_id("balance-total")).to_have_text("$120.00")
    expect(page.get_by_test_id("balance-topup")).to_have_text("$100.00")
    expect(page.get_by_test_id("balance-bonus")).to_have_text("$20.00")
    history = page.get_by_test_id("transaction-history")
    expect(history).to_contain_text("Top-up of $100.00")
    expect(page.get_by_test_id("default-card-status")).to_contain_text("Visa •••• 4242")
    page.screenshot(path=str(SCREENSHOTS / "topup-payg-after.png"), full_page=True)

    # The second top-up offers the saved card, chosen already.
    page.get_by_role("button", name="Top Up", exact=True).click()
    expect(dialog).to_be_visible()
    expect(page.get_by_test_id("profile-dialog")).to_be_hidden()
    card = dialog.get_by_test_id("method-card")
    expect(card).to_contain_text("Visa •••• 4242")
    expect(card).to_contain_text("Default")
    expect(card.locator("input")).to_be_checked()
    expect(dialog.get_by_test_id("topup-pay")).to_have_text("Pay $100.00")
    page.screenshot(path=str(SCREENSHOTS / "topup-saved-card.png"))
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()

    # The Billing page: the saved card, the billing details, Auto Top-Up.
    page.get_by_role("link", name="Billing", exact=True).click()
    expect(page.get_by_role("heading", name="Billing", level=1)).to_be_visible()
    saved = page.get_by_test_id("saved-card")
    expect(saved).to_have_count(1)
    expect(saved).to_contain_text("Visa •••• 4242")
    expect(saved).to_contain_text(f"Expires 12/{EXP_YEAR}")
    expect(saved).to_contain_text("Default")
    expect(page.get_by_test_id("profile-summary")).to_contain_text(
        "Carol Analytics GmbH"
    )

    page.get_by_role("button", name="Auto Top-Up").click()
    auto = page.get_by_test_id("autotopup-dialog")
    expect(auto).to_be_visible()
    expect(auto.get_by_label("When my balance falls below", exact=True)).to_have_value(
        "10.00"
    )
    expect(auto.get_by_label("Top up this amount")).to_have_value("100.00")
    expect(auto).to_contain_text("You receive $120.00 each time")
    expect(auto.get_by_test_id("autotopup-card")).to_contain_text("Visa •••• 4242")
    auto.get_by_text("Enable Auto Top-Up").click()
    auto.get_by_label("Top up this amount").fill("200")
    auto.get_by_role("button", name="Save").click()
    expect(auto.get_by_test_id("autotopup-error")).to_contain_text(
        "authorize the automatic charges"
    )
    auto.get_by_text("I authorize AGIPower to charge this card").click()
    page.screenshot(path=str(SCREENSHOTS / "topup-autotopup.png"))
    auto.get_by_role("button", name="Save").click()
    expect(auto).to_be_hidden()
    expect(page.get_by_test_id("autotopup-summary")).to_contain_text(
        "Tops up $200.00 when your balance falls below $10.00."
    )
    page.screenshot(path=str(SCREENSHOTS / "topup-billing.png"), full_page=True)

    # The billing details stay editable.
    page.get_by_test_id("edit-profile").click()
    profile = page.get_by_test_id("profile-dialog")
    expect(profile.get_by_label("Full name or company")).to_have_value(
        "Carol Analytics GmbH"
    )
    profile.get_by_label("Address line 2").fill("Floor 3")
    profile.get_by_label("Country").fill("")
    profile.get_by_role("button", name="Save billing details").click()
    expect(profile).to_contain_text("Required.")
    profile.get_by_label("Country").fill("AT")
    expect(profile).to_contain_text("Austria")
    profile.get_by_label("City").fill("Vienna")
    profile.get_by_role("button", name="Save billing details").click()
    expect(profile).to_be_hidden()
    expect(page.get_by_test_id("profile-summary")).to_contain_text("Floor 3")
    expect(page.get_by_test_id("profile-summary")).to_contain_text("Vienna")

    # A second card, added from the Billing page, made the default; then the
    # first one removed, after a warning that Auto Top-Up charges it.
    page.get_by_role("button", name="+ Add card").click()
    add = page.get_by_test_id("card-dialog")
    expect(add).to_be_visible()
    _type_card(page, "#card-dialog-element", MASTERCARD)
    page.screenshot(path=str(SCREENSHOTS / "topup-add-card.png"))
    add.get_by_role("button", name="Save card").click()
    expect(add).to_be_hidden()
    expect(saved).to_have_count(2)
    second = saved.filter(has_text="•••• 4444")
    expect(second).to_contain_text(f"•••• 4444Expires 12/{EXP_YEAR}")
    second.get_by_role("button", name="Make default").click()
    expect(second).to_contain_text("Default")
    first = saved.filter(has_text="•••• 4242")
    expect(first).not_to_contain_text("Default")
    page.screenshot(path=str(SCREENSHOTS / "topup-cards.png"), full_page=True)
    first.get_by_role("button", name="Remove Visa •••• 4242").click()
    confirm = page.get_by_test_id("confirm-dialog")
    expect(confirm).to_contain_text("Remove Visa •••• 4242?")
    expect(confirm).to_contain_text("Auto Top-Up charges this card")
    page.screenshot(path=str(SCREENSHOTS / "topup-remove-card.png"))
    confirm.get_by_role("button", name="Remove card").click()
    expect(confirm).to_be_hidden()
    expect(saved).to_have_count(1)
    expect(saved).to_contain_text("•••• 4444")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_top_up_100_with_a_new_card_in_the_browser(live_server, stripe_webhooks):
    pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}")
    user = user_signup(email=EMAIL, password=PASSWORD, full_name="Carol")
    account = user.account

    in_own_thread(_browse, live_server.url, _top_up_with_a_new_card)

    profile = BillingProfile.objects.get(account=account)
    assert (profile.name, profile.country, profile.city, profile.tax_id) == (
        "Carol Analytics GmbH",
        "AT",
        "Vienna",
        "DE123456789",
    )
    topup = TopUp.objects.get(account=account)
    assert topup.status == "succeeded"
    assert topup.amount_nanos == usd_to_nanos("100")
    assert (topup.card_brand, topup.card_last4) == ("visa", "4242")

    # The webhook for the same payment arrives (about a second later) and
    # credits nothing more: one top-up entry and one bonus entry.
    assert stripe_webhooks.wait_for(
        lambda: Event.objects.filter(type="payment_intent.succeeded").exists()
    )
    entries = LedgerEntry.objects.filter(account=account)
    assert entries.filter(kind=EntryKind.TOPUP).count() == 1
    assert entries.filter(kind=EntryKind.BONUS).count() == 1
    assert entries.get(kind=EntryKind.TOPUP).amount_nanos == usd_to_nanos("100")
    assert entries.get(kind=EntryKind.BONUS).amount_nanos == usd_to_nanos("20")
    account.wallet.refresh_from_db()
    assert account.wallet.topup_nanos == usd_to_nanos("100")
    assert account.wallet.bonus_nanos == usd_to_nanos("20")

    auto = AutoTopUp.objects.get(account=account)
    assert auto.enabled
    assert auto.threshold_nanos == usd_to_nanos("10")
    assert auto.amount_nanos == usd_to_nanos("200")
    assert auto.payment_method_id.startswith(("pm_", "card_"))


def _three_d_secure_and_declines(page, stripe_off) -> None:
    from playwright.sync_api import expect

    _sign_in(page)
    page.get_by_role("button", name="Top Up", exact=True).click()
    dialog = page.get_by_test_id("topup-dialog")
    expect(dialog).to_be_visible()
    expect(page.get_by_test_id("profile-dialog")).to_be_hidden()
    _type_card(page, "#topup-card-element", THREE_D_SECURE)
    dialog.get_by_test_id("topup-pay").click()

    # Saving the card asks for 3-D Secure (the stand-in's window): the dialog
    # steps aside while it is up.
    complete = page.get_by_role("button", name="Complete authentication")
    expect(complete).to_be_visible()
    expect(dialog).to_be_hidden()
    expect(page.get_by_text("Complete the verification from your bank")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "topup-3ds.png"))
    complete.click()
    # Paying with it asks again (requires_action -> confirmCardPayment).
    expect(complete).to_be_visible()
    complete.click()
    result = dialog.get_by_test_id("topup-result")
    expect(result).to_contain_text(
        "$120.00 added to your balance: $100.00 + $20.00 bonus."
    )
    expect(page.get_by_test_id("balance-total")).to_have_text("$120.00")
    dialog.get_by_test_id("topup-done").click()
    expect(page.get_by_test_id("transaction-history")).to_contain_text(
        "Top-up of $100.00"
    )

    # 3-D Secure refused: nothing charged, said plainly.
    page.get_by_role("button", name="Top Up", exact=True).click()
    expect(dialog.get_by_test_id("method-card").locator("input")).to_be_checked()
    dialog.get_by_text("Custom", exact=True).click()
    dialog.get_by_label("Custom amount").fill("50")
    expect(dialog.get_by_test_id("topup-pay")).to_have_text("Pay $50.00")
    dialog.get_by_test_id("topup-pay").click()
    page.get_by_role("button", name="Fail authentication").click()
    error = dialog.get_by_test_id("topup-error")
    expect(error).to_contain_text("3-D Secure authentication failed")
    expect(error).to_contain_text("Your card was not charged")
    page.wait_for_timeout(300)  # the dialog's entrance
    page.screenshot(path=str(SCREENSHOTS / "topup-3ds-failed.png"))

    # A card that saves but is declined when charged.
    dialog.get_by_text("Add a new card").click()
    _type_card(page, "#topup-card-element", DECLINED)
    expect(dialog.get_by_test_id("topup-pay")).to_have_text("Save card & pay $50.00")
    dialog.get_by_test_id("topup-pay").click()
    expect(error).to_contain_text("The payment did not go through")
    expect(error).to_contain_text("declined")
    expect(dialog.get_by_test_id("topup-methods")).to_contain_text("•••• 0341")
    page.screenshot(path=str(SCREENSHOTS / "topup-declined.png"))
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.get_by_test_id("balance-total")).to_have_text("$120.00")

    # At a phone's width: nothing wider than the screen, the dialog fits.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.get_by_role("button", name="Top Up", exact=True).click()
    expect(dialog.get_by_test_id("method-card").first).to_be_visible()
    page.wait_for_timeout(300)
    page.screenshot(path=str(SCREENSHOTS / "topup-mobile-dialog.png"))
    dialog.get_by_role("button", name="Cancel").click()
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    page.screenshot(path=str(SCREENSHOTS / "topup-mobile.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    # Auto Top-Up paused by a decline: the dialog says why, and saving again
    # resumes it.
    account = TopUp.objects.filter(status="succeeded").get().account
    card_id = TopUp.objects.filter(status="succeeded").get().payment_method_id
    AutoTopUp.objects.update_or_create(
        account=account,
        defaults={
            "enabled": True,
            "threshold_nanos": usd_to_nanos("10"),
            "amount_nanos": usd_to_nanos("100"),
            "payment_method_id": card_id,
            "paused_reason": "the card was declined (card_declined): "
            "Your card was declined.",
            "paused_at": timezone.now(),
        },
    )
    page.goto("/console/billing")
    summary = page.get_by_test_id("autotopup-summary")
    expect(summary).to_contain_text("Paused")
    expect(summary).to_contain_text("The card was declined")
    page.get_by_role("button", name="Auto Top-Up").click()
    auto = page.get_by_test_id("autotopup-dialog")
    paused = auto.get_by_test_id("autotopup-paused")
    expect(paused).to_be_visible()
    expect(paused).to_contain_text("The card was declined (card_declined)")
    expect(paused).to_contain_text("save these settings again to resume")
    expect(auto.get_by_test_id("autotopup-enabled")).to_be_checked()
    expect(auto.get_by_test_id("autotopup-card")).to_have_value(card_id)
    auto.get_by_text("I authorize AGIPower to charge this card").click()
    page.wait_for_timeout(300)
    page.screenshot(path=str(SCREENSHOTS / "topup-autotopup-paused.png"))
    auto.get_by_role("button", name="Save").click()
    expect(auto).to_be_hidden()
    expect(summary).to_contain_text("On")
    expect(summary).to_contain_text("Tops up $100.00 when your balance falls below")
    assert AutoTopUp.objects.get(account=account).paused_at is None

    # The page Alipay returns to asks the server, whatever the URL says.
    paid = TopUp.objects.create(
        account=account,
        amount_nanos=usd_to_nanos("50"),
        bonus_nanos=usd_to_nanos("10"),
        method="alipay",
        status="succeeded",
    )
    page.goto(f"/console/top-ups/{paid.pk}/return?redirect_status=failed")
    state = page.get_by_test_id("topup-return")
    expect(state).to_contain_text("Payment received")
    expect(state).to_contain_text(
        "$60.00 added to your balance: $50.00 + $10.00 bonus."
    )
    page.screenshot(path=str(SCREENSHOTS / "topup-return.png"))
    refused = TopUp.objects.create(
        account=account,
        amount_nanos=usd_to_nanos("50"),
        bonus_nanos=usd_to_nanos("10"),
        method="alipay",
        status="failed",
        failure_message="The customer did not approve the payment",
    )
    page.goto(f"/console/top-ups/{refused.pk}/return?redirect_status=succeeded")
    expect(state).to_contain_text("The payment did not go through")
    expect(state).to_contain_text("The customer did not approve the payment.")

    # Without Stripe keys the buttons say so instead of failing.
    stripe_off()
    page.goto("/console/pay-as-you-go")
    off = page.get_by_test_id("top-up-button")
    expect(off).to_be_disabled()
    expect(page.get_by_test_id("auto-top-up-button")).to_be_disabled()
    expect(
        page.get_by_text("Payments are not configured on this server").first
    ).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "topup-not-configured.png"))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_three_d_secure_refusals_and_declines_in_the_browser(
    live_server, stripe_webhooks, settings
):
    pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}")
    user = user_signup(email=EMAIL, password=PASSWORD, full_name="Carol")
    account = user.account
    billing_profile_save(
        account=account,
        name="Carol",
        country="US",
        address_line1="1 Main St",
        address_line2="",
        city="Springfield",
        state="",
        postal_code="",
        tax_id="",
    )

    def stripe_off():
        settings.STRIPE_SECRET_KEY = ""

    in_own_thread(
        _browse,
        live_server.url,
        lambda page: _three_d_secure_and_declines(page, stripe_off),
    )

    card_topups = TopUp.objects.filter(account=account, method="card")
    statuses = sorted(card_topups.values_list("status", flat=True))
    assert statuses.count("succeeded") == 1
    assert "failed" in statuses  # the declined card
    assert stripe_webhooks.wait_for(
        lambda: Event.objects.filter(type="payment_intent.succeeded").exists()
    )
    entries = LedgerEntry.objects.filter(account=account)
    assert entries.filter(kind=EntryKind.TOPUP).count() == 1
    assert entries.filter(kind=EntryKind.BONUS).count() == 1
