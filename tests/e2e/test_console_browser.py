"""A customer signs up in a real browser, an operator grants a gift, and the
Pay As You Go page shows it in the balances, the breakdown and the history."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from accounts.models import User
from tests.support.world import grant

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# Screenshots to look at after a run (a fixed, well-known place on purpose).
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", "/tmp"))  # noqa: S108


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_signup_then_a_gift_shows_everywhere(live_server, page):
    page.goto(f"{live_server.url}/signup")
    page.get_by_label("Email").fill("dana@example.com")
    page.get_by_label("Full name").fill("Dana Scully")
    page.get_by_label("Password", exact=True).fill("violet-harbour-lantern-42")
    page.get_by_label("Confirm password").fill("violet-harbour-lantern-42")
    page.get_by_role("button", name="Create account").click()

    page.wait_for_url(f"{live_server.url}/console/pay-as-you-go")
    expect(page.get_by_role("heading", name="Pay As You Go", level=1)).to_be_visible()
    expect(page.get_by_test_id("balance-total")).to_have_text("$0.00")
    expect(page.get_by_test_id("balance-topup")).to_have_text("$0.00")
    expect(page.get_by_test_id("balance-bonus")).to_have_text("$0.00")
    expect(page.get_by_test_id("user-email")).to_have_text("dana@example.com")

    # An operator grants a welcome gift.
    grant(User.objects.get(email="dana@example.com"), "25", reason="welcome")
    page.reload()

    expect(page.get_by_test_id("balance-total")).to_have_text("$25.00")
    expect(page.get_by_test_id("balance-bonus")).to_have_text("$25.00")
    expect(page.get_by_test_id("balance-topup")).to_have_text("$0.00")

    # The breakdown opens from the info button next to Total Balance.
    gifts = page.get_by_test_id("breakdown-gifts")
    expect(gifts).to_be_hidden()
    page.locator("summary").filter(has_text="Credits breakdown").click()
    expect(gifts).to_be_visible()
    expect(gifts).to_contain_text("Gifts")
    expect(gifts).to_contain_text("$25.00")
    expect(page.get_by_test_id("breakdown-total")).to_contain_text("$25.00")

    history = page.get_by_test_id("transaction-history")
    rows = history.get_by_test_id("transaction-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Gift")
    expect(rows.first).to_contain_text("$25.00")
    expect(rows.first).to_contain_text("welcome")

    page.screenshot(path=SCREENSHOTS / "payg.png", full_page=True)

    # The console works at a phone's width too: nothing wider than the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.get_by_test_id("balance-total")).to_have_text("$25.00")
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    page.screenshot(path=SCREENSHOTS / "payg-mobile.png", full_page=True)

    # Log out: the console asks to sign in again.
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{live_server.url}/login")
    page.goto(f"{live_server.url}/console/pay-as-you-go")
    expect(page).to_have_url(f"{live_server.url}/login?next=/console/pay-as-you-go")
