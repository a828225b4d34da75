"""The Gift codes page in Chromium: reached from the nav, a typo is shown on
the field, a promotion code is redeemed and the page shows what it credited
and the new balance; nothing is refused by the Content-Security-Policy."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from billing.ledger.selectors import balance_get
from gifts.services import promotion_create
from tests.support.browser import in_own_thread
from tests.support.console_browser import PHONE, browse
from tests.support.ledger import USD

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.browser


def test_a_customer_redeems_a_code_and_sees_the_new_balance(live_server, alice):
    _, (code,) = promotion_create(
        name="Spring",
        amount_nanos=12_500_000_000,
        kind="codes",
        count=1,
        max_redemptions=1,
        expires_at=timezone.now() + timedelta(days=7),
        actor=None,
    )
    typo = code[:-1] + ("0" if code[-1] != "0" else "1")

    def steps(page, seen):
        from playwright.sync_api import expect

        page.get_by_role("link", name="Gift codes").click()
        expect(page.get_by_role("heading", name="Gift codes", level=1)).to_be_visible()
        expect(page.get_by_test_id("gift-balance")).to_have_text("$50.00")
        page.get_by_label("Code", exact=True).fill(typo)
        page.get_by_role("button", name="Redeem").click()
        expect(page.get_by_test_id("redeem-error")).to_contain_text("typo")
        expect(page.get_by_label("Code", exact=True)).to_have_attribute(
            "aria-invalid", "true"
        )
        page.get_by_label("Code", exact=True).fill(code.lower())
        page.get_by_role("button", name="Redeem").click()
        expect(
            page.get_by_text("Discount: $12.50 credited. Your balance is now $62.50.")
        ).to_be_visible()
        expect(page.get_by_test_id("gift-balance")).to_have_text("$62.50")
        expect(page.get_by_test_id("redemptions")).to_contain_text("Discount: Spring")
        assert seen.refused(page) == []
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= PHONE["width"], wide

    in_own_thread(
        lambda: browse(
            live_server.url, steps, email="alice@example.com", viewport=PHONE
        )
    )
    assert balance_get(account=alice.account).total_nanos == 50 * USD + 12_500_000_000
