"""In Chromium, under the Content-Security-Policy: the API docs render from
local files, operators sign in and grant credits in admin, the console works,
and nothing on these pages is refused by the policy. An inline script added to
a page is refused, which shows the policy is enforced and that refusals are
seen."""

from __future__ import annotations

import os

import pytest
from django.db import connection

from billing.ledger.selectors import balance_get
from money import usd_to_nanos
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, in_own_thread
from tests.support.world import PASSWORD

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.browser

# Playwright's init scripts run outside the page's policy.
_RECORD_REFUSALS = """
window.__refused = [];
document.addEventListener("securitypolicyviolation", function (event) {
  var what = event.blockedURI || "inline";
  window.__refused.push(event.effectiveDirective + " " + what);
});
"""


def _browse(base_url: str, steps) -> None:
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, base_url=base_url
        )
        context.add_init_script(_RECORD_REFUSALS)
        page = context.new_page()
        page.set_default_timeout(15_000)
        errors: list[str] = []
        console: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on(
            "console",
            lambda message: (
                console.append(message.text)
                if "Content Security Policy" in message.text
                else None
            ),
        )
        try:
            steps(page, console)
        finally:
            browser.close()
            connection.close()
        assert not errors, errors


def _refused(page) -> list[str]:
    return page.evaluate("window.__refused")


def _docs_admin_and_console(page, console: list[str]) -> None:
    from playwright.sync_api import expect

    # The API docs: Swagger UI from local files, the operations listed.
    page.goto("/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text(
        "AGIPower management API"
    )
    expect(
        page.locator(".opblock-summary-path", has_text="/api/v1/balance").first
    ).to_be_visible()
    assert _refused(page) == []
    assert console == []

    # Control: an inline script put into the page is refused and seen.
    ran = page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.__inlineRan = true;";
          document.body.appendChild(script);
          return window.__inlineRan === true;
        }"""
    )
    assert ran is False
    assert _refused(page) == ["script-src-elem inline"]
    assert len(console) == 1 and "inline script" in console[0], console
    console.clear()

    # Admin: the throttled sign-in, then "Grant credits" from the account's page.
    page.goto("/admin/login/")
    expect(page).to_have_title("Log in | AGIPower operations")
    page.get_by_label("Email").fill("ops@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Operations")).to_be_visible()
    page.goto("/admin/accounts/account/")
    page.get_by_role("link", name="Bob <bob@example.com>").click()
    assert _refused(page) == []
    page.get_by_test_id("grant-credits").click()
    page.get_by_label("Source").select_option("compensation")
    page.get_by_label("Amount").fill("25")
    page.get_by_label("Reason").fill("outage")
    page.get_by_role("button", name="Grant").click()
    expect(page.locator(".messagelist")).to_contain_text("Compensation of $25.00")
    # The admin's own scripts run: the navigation sidebar's filter is there.
    expect(page.locator("#nav-filter")).to_be_visible()
    assert _refused(page) == []
    page.get_by_role("button", name="Log out").click()

    # The console's pages, signed in as a customer.
    page.goto("/login")
    page.get_by_label("Email").fill("alice@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Pay As You Go", level=1)).to_be_visible()
    assert _refused(page) == []
    page.get_by_role("link", name="API Keys").click()
    expect(page.get_by_role("heading", name="API Keys", level=1)).to_be_visible()
    assert _refused(page) == []
    assert console == []


def test_pages_work_under_the_policy(live_server, alice, bob, ops):
    in_own_thread(_browse, live_server.url, _docs_admin_and_console)

    assert balance_get(account=bob.account).bonus_nanos == usd_to_nanos("25")
