"""The Alerts page in Chromium at a phone's width: reached from the nav, the
switches work by their labels, a bad amount is shown on its field, and a save
is kept; nothing is refused by the Content-Security-Policy and the page does
not scroll sideways."""

from __future__ import annotations

import os

import pytest
from django.db import connection

from alerts.selectors import alert_settings_get
from money import usd_to_nanos
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, in_own_thread
from tests.support.world import PASSWORD

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.browser


def _scenario(base_url: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        page = browser.new_context(
            viewport={"width": 390, "height": 844}, base_url=base_url
        ).new_page()
        page.set_default_timeout(15_000)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on(
            "console",
            lambda message: (
                errors.append(message.text)
                if "Content Security Policy" in message.text
                else None
            ),
        )
        try:
            page.goto("/login")
            page.get_by_label("Email").fill("alice@example.com")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.goto("/console/alerts")
            expect(page.get_by_role("heading", name="Alerts", level=1)).to_be_visible()
            low = page.get_by_test_id("low-balance-enabled")
            expect(low).to_be_checked()
            page.get_by_text("Email me when a key nears its credit limit").click()
            expect(page.get_by_test_id("key-usage-enabled")).not_to_be_checked()

            threshold = page.get_by_label("When my balance falls below (USD)")
            threshold.fill("3,5")
            page.get_by_test_id("alerts-save").click()
            expect(page.get_by_text("not a decimal amount")).to_be_visible()
            expect(threshold).to_have_attribute("aria-invalid", "true")

            page.get_by_label("When my balance falls below (USD)").fill("12.50")
            page.get_by_test_id("alerts-save").click()
            expect(page.get_by_text("Alert settings saved.")).to_be_visible()
            expect(
                page.get_by_label("When my balance falls below (USD)")
            ).to_have_value("12.5")
            expect(page.get_by_test_id("key-usage-enabled")).not_to_be_checked()
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= 390, wide
        finally:
            browser.close()
            connection.close()
        assert errors == []


def test_the_alerts_page_at_a_phones_width(live_server, alice):
    in_own_thread(_scenario, live_server.url)
    row = alert_settings_get(account=alice.account)
    assert row.low_balance_threshold_nanos == usd_to_nanos("12.5")
    assert (row.low_balance_enabled, row.key_usage_enabled) == (True, False)
