"""In a real browser: create a key, copy it from the box that shows it once,
then disable it with the toggle and delete it after confirming."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.db import connection

from apikeys.models import ApiKey, KeyStatus
from apikeys.secrets import PAYG_PREFIX, key_is_well_formed
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, in_own_thread
from tests.support.world import PASSWORD

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", "/tmp"))  # noqa: S108


def _create_copy_disable_delete(base_url: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, base_url=base_url
        )
        context.grant_permissions(["clipboard-read", "clipboard-write"])
        page = context.new_page()
        page.set_default_timeout(10_000)

        try:
            _steps(page)
        finally:
            browser.close()
            # Queries made by _steps ran in Playwright's greenlet, whose
            # connection the thread's own close() does not see.
            connection.close()


def _steps(page) -> None:
    from playwright.sync_api import expect

    page.goto("/login")
    page.get_by_label("Email").fill("alice@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="API Keys").click()
    expect(page.get_by_role("heading", name="API Keys", level=1)).to_be_visible()

    page.get_by_role("link", name="+ Create API Key").click()
    page.get_by_label("Name").fill("production-app")
    page.get_by_role("button", name="Create").click()

    box = page.get_by_test_id("new-key-box")
    secret = page.get_by_test_id("new-key").inner_text()
    assert key_is_well_formed(secret, PAYG_PREFIX)
    expect(box).to_contain_text("won’t be shown again")
    box.get_by_role("button", name="Copy").click()
    expect(box).to_contain_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    page.screenshot(path=str(SCREENSHOTS / "keys-created.png"), full_page=True)

    page.get_by_role("link", name="API Keys").click()
    expect(page.get_by_test_id("new-key-box")).to_have_count(0)
    assert secret not in page.content()

    page.get_by_role("switch", name="Enabled").click()
    expect(page.get_by_role("switch", name="Disabled")).to_be_visible()
    assert ApiKey.objects.get(name="production-app").status == KeyStatus.DISABLED
    page.screenshot(path=str(SCREENSHOTS / "keys-list.png"), full_page=True)

    page.get_by_test_id("key-row").get_by_role("link", name="Delete").click()
    expect(page.get_by_test_id("confirm-delete")).to_contain_text("production-app")
    page.get_by_role("button", name="Delete key").click()
    expect(page.get_by_test_id("keys-table")).to_contain_text("No API keys yet")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_create_copy_disable_and_delete_a_key(live_server, alice):
    pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}")
    in_own_thread(_create_copy_disable_delete, live_server.url)
