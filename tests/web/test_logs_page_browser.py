"""The Logs pages in Chromium: filters picked from the keyboard narrow the
rows and their count, Older and Newer page through them by cursor without a
repeat or a gap, a row opens its request's details, and at 390 px both pages
fit the window (one browser session: each test with a live server costs a
flush of the database); nothing on them is refused by the Content-Security-Policy."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.browser import in_own_thread
from tests.support.console_browser import PHONE, browse, overflow
from tests.support.keys import make_key, make_log

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", "/tmp"))  # noqa: S108


@pytest.fixture
def logs(alice):
    """60 requests on alice's production key, newest first, and 5 failed ones
    on another key in between."""
    production = make_key(alice, name="production-app")
    batch = make_key(alice, name="batch-jobs")
    start = datetime.now(UTC) - timedelta(hours=2)
    made = [
        make_log(production, at=start + timedelta(seconds=10 * i), streamed=i % 2 == 0)
        for i in range(60)
    ]
    for i in range(5):
        make_log(
            batch,
            at=start + timedelta(seconds=10 * i + 5),
            model="anthropic/claude",
            provider="anthropic",
            status=502,
            error="upstream timed out",
        )
    return [str(log.id) for log in reversed(made)]


def ids(page) -> list[str]:
    return page.get_by_test_id("log-row").evaluate_all(
        "rows => rows.map(row => row.dataset.id)"
    )


def _desktop(expected: list[str]):
    def steps(page, seen):
        from playwright.sync_api import expect

        page.get_by_role("link", name="Logs", exact=True).click()
        expect(page.get_by_role("heading", name="Logs", level=1)).to_be_visible()
        expect(page.get_by_test_id("logs-count")).to_have_text("65 matching requests")

        # The key picker and the model, from the keyboard.
        form = page.get_by_test_id("log-filters")
        form.get_by_text("All keys").focus()
        page.keyboard.press("Enter")
        form.get_by_label("production-app").focus()
        page.keyboard.press("Space")
        form.get_by_label("Model").fill("openai/gpt-5")
        page.keyboard.press("Enter")
        expect(page).to_have_url(re.compile(r"key=\d+.*model=openai%2Fgpt-5"))
        expect(page.get_by_test_id("logs-count")).to_have_text("60 matching requests")
        expect(form.get_by_text("production-app", exact=True).first).to_be_attached()
        first = ids(page)
        assert first == expected[:50]
        csv = page.get_by_test_id("logs-csv").get_attribute("href")
        assert "model=openai%2Fgpt-5" in csv and "cursor" not in csv
        page.screenshot(path=str(SCREENSHOTS / "logs-desktop.png"), full_page=True)

        pages = page.get_by_test_id("logs-pagination")
        pages.get_by_role("link", name="Older").click()
        expect(page.get_by_test_id("log-row")).to_have_count(10)
        assert ids(page) == expected[50:]
        expect(pages.get_by_text("Older")).to_have_attribute("aria-disabled", "true")
        pages.get_by_role("link", name="Newer").click()
        expect(page.get_by_test_id("log-row")).to_have_count(50)
        assert ids(page) == first
        # The filters stay as they were across pages.
        expect(form.get_by_label("Model")).to_have_value("openai/gpt-5")

        # A row opens its request.
        page.get_by_test_id("log-row").first.get_by_role("link").click()
        expect(page.get_by_test_id("log-id")).to_have_text(expected[0])
        expect(page.get_by_test_id("log-tokens")).to_contain_text("Prompt 100")
        expect(page.get_by_test_id("log-costs")).to_contain_text("Total $0.000325")
        page.screenshot(path=str(SCREENSHOTS / "log-detail.png"), full_page=True)

        assert seen.refused(page) == []
        assert seen.console == []
        _phone(expected)(page, seen)

    return steps


def _phone(expected: list[str]):
    def steps(page, seen):
        from playwright.sync_api import expect

        page.set_viewport_size(PHONE)
        page.goto("/console/logs?status=error")
        expect(page.get_by_test_id("logs-count")).to_have_text("5 matching requests")
        assert overflow(page) == 0
        page.screenshot(path=str(SCREENSHOTS / "logs-phone.png"), full_page=True)
        page.goto(f"/console/logs/{expected[0]}")
        expect(page.get_by_test_id("log-id")).to_have_text(expected[0])
        assert overflow(page) == 0
        page.screenshot(path=str(SCREENSHOTS / "log-detail-phone.png"), full_page=True)
        assert seen.refused(page) == []
        assert seen.console == []

    return steps


def test_logs_filter_page_open_a_request_and_fit_a_phone(live_server, logs):
    in_own_thread(
        lambda: browse(live_server.url, _desktop(logs), email="alice@example.com")
    )
