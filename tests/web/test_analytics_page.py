"""The Cost Analytics page's form: presets and custom ranges resolve to the UTC
days the script asks the API for, the granularity follows the range unless
chosen, a URL reproduces the view, and bad values are named on the form (a
400, never a 500)."""

from __future__ import annotations

from datetime import date

import pytest
from django.urls import reverse

from agipower.console.analytics import PRESET_BY_SLUG
from tests.support.keys import make_key

pytestmark = pytest.mark.django_db
URL = "/console/analytics"


def view_of(response) -> dict:
    """The view the page hands its script (the root's data attributes)."""
    view = response.context["view"]
    return {
        "from": view.start.isoformat(),
        "to": view.end.isoformat(),
        "granularity": view.granularity,
        "key": view.key,
        "model": view.model,
    }


@pytest.mark.parametrize(
    ("today", "slug", "first", "last"),
    [
        (date(2026, 3, 15), "today", date(2026, 3, 15), date(2026, 3, 15)),
        (date(2026, 3, 15), "7d", date(2026, 3, 9), date(2026, 3, 15)),
        (date(2026, 3, 15), "30d", date(2026, 2, 14), date(2026, 3, 15)),
        (date(2026, 2, 10), "this-month", date(2026, 2, 1), date(2026, 2, 28)),
        (date(2026, 1, 10), "last-month", date(2025, 12, 1), date(2025, 12, 31)),
        (date(2024, 3, 31), "last-month", date(2024, 2, 1), date(2024, 2, 29)),
    ],
)
def test_presets_cover_whole_utc_days(today, slug, first, last):
    assert PRESET_BY_SLUG[slug].dates(today) == (first, last)


def test_the_default_view_is_the_last_30_days_by_day(client, alice):
    client.force_login(alice)
    response = client.get(URL)
    assert response.status_code == 200
    view = view_of(response)
    assert view["granularity"] == "day"
    assert (
        date.fromisoformat(view["to"]) - date.fromisoformat(view["from"])
    ).days == 29
    body = response.content.decode()
    assert 'aria-current="true">30 days<' in body
    assert f'data-api="{reverse("api-analytics-cost")}"' in body
    assert f'data-from="{view["from"]}"' in body


def test_today_is_drawn_by_the_hour_and_a_year_by_the_month(client, alice):
    client.force_login(alice)
    assert view_of(client.get(URL, {"range": "today"}))["granularity"] == "hour"
    yearly = client.get(URL, {"from": "2025-01-01", "to": "2025-12-31"})
    assert view_of(yearly)["granularity"] == "month"
    chosen = client.get(
        URL, {"from": "2025-01-01", "to": "2025-12-31", "granularity": "day"}
    )
    assert view_of(chosen)["granularity"] == "day"


def test_a_custom_range_reproduces_its_view_with_its_filters(client, alice):
    key = make_key(alice, name="batch-jobs")
    client.force_login(alice)
    response = client.get(
        URL,
        {
            "from": "2026-01-05",
            "to": "2026-01-20",
            "key": str(key.api_key.pk),
            "model": "fake/gpt",
        },
    )
    assert response.status_code == 200
    assert view_of(response) == {
        "from": "2026-01-05",
        "to": "2026-01-20",
        "granularity": "day",
        "key": key.api_key.pk,
        "model": "fake/gpt",
    }
    body = response.content.decode()
    # The requests CSV of the same range and filters.
    csv = response.context["csv_url"]
    assert csv.startswith(reverse("api-requests-csv") + "?")
    for part in ("from=2026-01-05", "to=2026-01-20", f"key={key.api_key.pk}"):
        assert part in csv
    assert "model=fake%2Fgpt" in csv
    # The ledger's transactions of the same days.
    assert response.context["transactions_csv_url"] == (
        reverse("api-transactions-csv") + "?from=2026-01-05&to=2026-01-20"
    )
    # A preset link keeps the key and model, and drops the dates.
    presets = {preset["slug"]: preset["url"] for preset in response.context["presets"]}
    assert presets["7d"] == f"?range=7d&key={key.api_key.pk}&model=fake%2Fgpt"
    assert 'aria-current="true"' not in body


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"from": "2026-02-10", "to": "2026-02-01"}, "to", "before the start date"),
        ({"from": "2024-01-01", "to": "2026-01-01"}, "from", "at most 366 days"),
        (
            {"from": "2026-01-01", "to": "2026-03-01", "granularity": "hour"},
            "granularity",
            "at most 31 days",
        ),
        ({"from": "yesterday"}, "from", "Enter a valid date"),
        ({"granularity": "week"}, "granularity", "Select a valid choice"),
        ({"model": "gpt\u202e"}, "model", "invisible control character"),
    ],
)
def test_bad_values_are_named_on_the_form(client, alice, params, field, message):
    client.force_login(alice)
    response = client.get(URL, params)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert message in " ".join(errors[field])
    assert response.context["view"] is None
    assert b"data-analytics" not in response.content


def test_another_accounts_key_is_not_a_choice(client, alice, bob):
    bobs = make_key(bob, name="bobs-key")
    client.force_login(alice)
    response = client.get(URL, {"key": str(bobs.api_key.pk)})
    assert response.status_code == 400
    assert "key" in response.context["form"].errors
    assert b"bobs-key" not in response.content


def test_signing_in_comes_first(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
