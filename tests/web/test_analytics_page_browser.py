"""Cost Analytics in Chromium, with usage settled the way the proxy settles it
(logs and hourly rollups in one ``proxy_batch``): the cards show the totals,
every chart draws, a key filter narrows them, a preset is reached from the
keyboard, and at 390 px the page fits the window (one browser session: each
test with a live server costs a flush of the database); nothing on it is refused by
the Content-Security-Policy."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from apikeys.services import key_create
from money import format_usd
from tests.support.browser import in_own_thread
from tests.support.console_browser import PHONE, browse, inked_pixels, overflow
from tests.support.usage import usage_commit, usage_item

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", "/tmp"))  # noqa: S108
CHARTS = ("time", "key", "type", "provider")


@pytest.fixture
def usage(alice):
    """Three days of alice's usage on two keys, two models and two providers;
    what each key spent."""
    production = key_create(account=alice.account, name="production-app")
    batch = key_create(account=alice.account, name="batch-jobs")
    now = datetime.now(UTC)
    items = []
    for days in (0, 1, 3):
        at = now - timedelta(days=days, minutes=5)
        items += [
            usage_item(
                production,
                at=at,
                prompt_tokens=12_000,
                cached_tokens=4_000,
                completion_tokens=900,
            ),
            usage_item(
                production,
                at=at + timedelta(seconds=1),
                model="other/large",
                provider="other",
                prompt_tokens=30_000,
                completion_tokens=2_500,
                reasoning_tokens=500,
            ),
            usage_item(
                batch,
                at=at + timedelta(seconds=2),
                prompt_tokens=8_000,
                cache_write_tokens=2_000,
                completion_tokens=400,
            ),
        ]
    usage_commit(alice.account.id, items)
    spent = {production.api_key.pk: 0, batch.api_key.pk: 0}
    for item in items:
        spent[item["api_key_id"]] += item["cost"]
    return {"production": production, "batch": batch, "spent": spent}


def shown(nanos: int) -> str:
    """An amount as the page shows it: the digits that say something."""
    places = 2 if nanos == 0 or nanos >= 10**9 else 4 if nanos >= 10**7 else 6
    return format_usd(nanos, places=places)


def card(page, metric: str) -> str:
    return page.locator(f'[data-metric="{metric}"] [data-value]').inner_text()


def charts_drawn(page, name: str) -> None:
    for chart in CHARTS:
        canvas = page.get_by_test_id(f"chart-{chart}")
        assert canvas.is_visible()
        png = canvas.screenshot(path=str(SCREENSHOTS / f"analytics-{name}-{chart}.png"))
        box = canvas.bounding_box()
        assert box["width"] > 100 and box["height"] > 100, (chart, box)
        # A blank canvas has no pixel off white; a drawn one has thousands.
        assert inked_pixels(png) > 500, chart


def _desktop(usage):
    production, batch = usage["production"].api_key, usage["batch"].api_key
    total = sum(usage["spent"].values())

    def steps(page, seen):
        from playwright.sync_api import expect

        page.get_by_role("link", name="Cost Analytics").click()
        expect(
            page.get_by_role("heading", name="Cost Analytics", level=1)
        ).to_be_visible()
        page.get_by_role("link", name="7 days").click()
        root = page.get_by_test_id("analytics")
        expect(root).to_have_attribute("data-ready", "true")
        assert (
            page.get_by_role("link", name="7 days").get_attribute("aria-current")
            == "true"
        )
        assert card(page, "requests") == "9"
        assert card(page, "cost") == shown(total)
        # Nothing was spent in the 7 days before: every change says so.
        expect(page.locator('[data-metric="cost"] [data-change]')).to_have_text(
            "▲ new this period"
        )
        rows = page.get_by_test_id("model-row")
        expect(rows).to_have_count(2)
        expect(rows.first).to_contain_text("other/large")
        expect(page.get_by_test_id("analytics-empty")).to_be_hidden()
        charts_drawn(page, "desktop")
        page.screenshot(path=str(SCREENSHOTS / "analytics-desktop.png"), full_page=True)

        # One key: the cards, the table and the charts follow the filter.
        form = page.get_by_test_id("analytics-filters")
        form.get_by_label("Key", exact=True).select_option(label="batch-jobs")
        page.get_by_role("button", name="Apply").click()
        expect(page).to_have_url(re.compile(f"key={batch.pk}"))
        expect(root).to_have_attribute("data-ready", "true")
        assert card(page, "requests") == "3"
        spent = usage["spent"][batch.pk]
        assert card(page, "cost") == shown(spent)
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("fake/gpt")
        charts_drawn(page, "key")
        # The range's requests as CSV, with the same filters.
        csv = page.get_by_test_id("requests-csv").get_attribute("href")
        assert f"key={batch.pk}" in csv and "from=" in csv and "to=" in csv
        assert str(production.pk) not in csv.split("key=")[1]

        # From the keyboard: a preset link, then dates typed into the form.
        page.get_by_role("link", name="30 days").focus()
        page.keyboard.press("Enter")
        # The preset keeps the key filter.
        expect(page).to_have_url(re.compile(f"range=30d&key={batch.pk}"))
        expect(root).to_have_attribute("data-ready", "true")
        assert card(page, "requests") == "3"
        form.get_by_label("From", exact=True).fill("2020-01-01")
        form.get_by_label("To", exact=True).fill("2020-01-31")
        form.get_by_label("To", exact=True).press("Enter")
        expect(page).to_have_url(re.compile("from=2020-01-01"))
        expect(root).to_have_attribute("data-ready", "true")
        assert card(page, "requests") == "0"
        expect(page.get_by_test_id("analytics-empty")).to_be_visible()
        expect(page.get_by_test_id("chart-time")).to_be_hidden()

        assert seen.refused(page) == []
        assert seen.console == []
        _phone(page, seen)

    return steps


def _phone(page, seen):
    from playwright.sync_api import expect

    page.set_viewport_size(PHONE)
    page.goto("/console/analytics?range=7d")
    expect(page.get_by_test_id("analytics")).to_have_attribute("data-ready", "true")
    charts_drawn(page, "phone")
    page.screenshot(path=str(SCREENSHOTS / "analytics-phone.png"), full_page=True)
    assert overflow(page) == 0
    # The cards stack: one column, each as wide as the next.
    boxes = [
        page.locator(f'[data-metric="{metric}"]').bounding_box()
        for metric in ("cost", "input_cost")
    ]
    assert boxes[0]["x"] == boxes[1]["x"] and boxes[1]["y"] > boxes[0]["y"]
    assert boxes[0]["width"] <= PHONE["width"]
    # The table per model keeps its columns and scrolls in its own frame.
    frame = page.get_by_test_id("model-table").locator("xpath=..")
    widths = frame.evaluate("node => [node.scrollWidth, node.clientWidth]")
    assert widths[0] > widths[1]
    expect(page.get_by_test_id("model-table").locator("thead")).to_be_visible()
    assert seen.refused(page) == []
    assert seen.console == []


def test_cost_analytics_draws_its_charts_follows_filters_and_fits_a_phone(
    live_server, usage
):
    in_own_thread(
        lambda: browse(live_server.url, _desktop(usage), email="alice@example.com")
    )
