"""The console in Chromium for page tests: a signed-in page that records what
the Content-Security-Policy refuses, errors thrown in the page and messages
logged to its console; and how much a chart drew (a screenshot of its canvas,
counted with Pillow)."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field

import pytest
from django.db import connection

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.world import PASSWORD

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

# Playwright's init scripts run outside the page's policy.
_RECORD_REFUSALS = """
window.__refused = [];
document.addEventListener("securitypolicyviolation", function (event) {
  var what = event.blockedURI || "inline";
  window.__refused.push(event.effectiveDirective + " " + what);
});
"""


@dataclass
class Seen:
    """What went wrong in the page, as it happened."""

    errors: list[str] = field(default_factory=list)  # thrown, not caught
    console: list[str] = field(default_factory=list)  # console errors and warnings

    def refused(self, page) -> list[str]:
        return page.evaluate("window.__refused || []")


def browse(base_url: str, steps, *, email: str, viewport: dict = DESKTOP) -> None:
    """Sign ``email`` in and run ``steps(page, seen)``; afterwards, nothing may
    have been thrown in the page."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        context = browser.new_context(viewport=viewport, base_url=base_url)
        context.add_init_script(_RECORD_REFUSALS)
        page = context.new_page()
        page.set_default_timeout(15_000)
        seen = Seen()
        page.on("pageerror", lambda error: seen.errors.append(str(error)))
        page.on(
            "console",
            lambda message: (
                seen.console.append(f"{message.type}: {message.text}")
                if message.type in ("error", "warning")
                else None
            ),
        )
        try:
            page.goto("/login")
            page.get_by_label("Email").fill(email)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/console/**")
            steps(page, seen)
        finally:
            browser.close()
            # Queries made by the steps ran in Playwright's greenlet, whose
            # connection the thread's own close() does not see.
            connection.close()
        assert not seen.errors, seen.errors


def inked_pixels(png: bytes, *, background=(255, 255, 255), tolerance: int = 24) -> int:
    """How many pixels of a screenshot differ from the background: a chart
    that drew nothing is a blank rectangle."""
    from PIL import Image, ImageChops

    image = Image.open(io.BytesIO(png)).convert("RGB")
    plain = Image.new("RGB", image.size, background)
    difference = ImageChops.difference(image, plain).convert("L")
    return sum(difference.histogram()[tolerance + 1 :])


def overflow(page) -> int:
    """How far the page is wider than the window (0 when nothing sticks out)."""
    return page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
