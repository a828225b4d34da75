"""The Referrals page in Chromium at a phone's width: reached from the nav, its
link copied by the button, and a friend who opens that link and signs up is
counted; nothing is refused by the Content-Security-Policy and the page does
not scroll sideways."""

from __future__ import annotations

import os

import pytest

from referrals.models import Referral, ReferralStatus
from tests.support.browser import in_own_thread
from tests.support.console_browser import PHONE, browse
from tests.support.world import PASSWORD

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.browser


def test_a_referrer_copies_the_link_and_a_friend_signs_up_with_it(live_server, alice):
    copied: list[str] = []

    def steps(page, seen):
        from playwright.sync_api import expect

        page.get_by_role("link", name="Referrals").click()
        expect(page.get_by_role("heading", name="Referrals", level=1)).to_be_visible()
        expect(page.get_by_test_id("referral-signups")).to_have_text("0")
        link = page.get_by_test_id("referral-link").inner_text()
        page.get_by_test_id("referral-copy").click()
        expect(page.get_by_test_id("referral-copy")).to_contain_text("Copied")
        assert seen.refused(page) == []
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= PHONE["width"], wide
        copied.append(link)

        # The friend opens the link in a browser of their own.
        friend = page.context.browser.new_context(viewport=PHONE).new_page()
        friend.goto(link.replace("http://127.0.0.1:8000", live_server.url))
        friend.get_by_label("Email").fill("carol@example.com")
        friend.get_by_label("Full name").fill("Carol")
        friend.get_by_label("Password", exact=True).fill(PASSWORD)
        friend.get_by_label("Confirm password").fill(PASSWORD)
        friend.get_by_role("button", name="Create account").click()
        friend.wait_for_url("**/console/**")

        page.reload()
        expect(page.get_by_test_id("referral-signups")).to_have_text("1")

    in_own_thread(
        lambda: browse(
            live_server.url, steps, email="alice@example.com", viewport=PHONE
        )
    )
    assert copied and copied[0].endswith("/signup?ref=" + copied[0].rsplit("=", 1)[1])
    referral = Referral.objects.get()
    assert (referral.referrer, referral.status) == (
        alice.account,
        ReferralStatus.ACTIVE,
    )
