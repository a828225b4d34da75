"""The console's Cost Analytics page (/console/analytics).

The page is a GET form (so a URL reproduces the view) and the frame of cards,
charts and a table per model; console-analytics.js fills them from
``GET /api/v1/analytics/cost`` with the session, one call per grouping. The
numbers therefore come from one place, the API, which reads the hourly usage
rollups. Here the form is read and the range resolved to UTC dates: presets
(today, 7 days, 30 days, this month, last month) or a custom range, both ends
inclusive as the API takes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

from django import forms
from django.shortcuts import render
from django.urls import reverse

from accounts.access import account_required
from accounts.models import Account
from accounts.validators import PlainTextValidator
from apikeys.selectors import keys_for_account
from proxy.models import RequestLog

# The longest range one view covers, and the longest one drawn by the hour.
MAX_DAYS = 366
MAX_HOURLY_DAYS = 31
DEFAULT_PRESET = "30d"
# The cards: the API's totals, in the order shown.
METRICS = [
    ("cost", "Total cost"),
    ("input_cost", "Input cost"),
    ("output_cost", "Output cost"),
    ("other_cost", "Other cost"),
    ("requests", "Requests"),
    ("avg_cost_per_request", "Avg cost per request"),
    ("avg_cost_per_million_tokens", "Avg cost per 1M tokens"),
    ("tokens", "Tokens"),
]


@dataclass(frozen=True)
class Preset:
    slug: str
    label: str

    def dates(self, today: date) -> tuple[date, date]:
        """The first and the last day (inclusive) this preset covers today."""
        if self.slug == "today":
            return today, today
        if self.slug == "7d":
            return today - timedelta(days=6), today
        if self.slug == "30d":
            return today - timedelta(days=29), today
        first = today.replace(day=1)
        if self.slug == "this-month":
            return first, _month_end(first)
        # last-month
        previous = (first - timedelta(days=1)).replace(day=1)
        return previous, first - timedelta(days=1)


PRESETS = [
    Preset("today", "Today"),
    Preset("7d", "7 days"),
    Preset("30d", "30 days"),
    Preset("this-month", "This month"),
    Preset("last-month", "Last month"),
]
PRESET_BY_SLUG = {preset.slug: preset for preset in PRESETS}


def _month_end(first: date) -> date:
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


def granularity_for(start: date, end: date) -> str:
    """The bucket that draws a range best when none is chosen: hours for a day
    or two, days up to about a quarter, months beyond."""
    days = (end - start).days + 1
    if days <= 2:
        return "hour"
    if days <= 92:
        return "day"
    return "month"


class CostFilterForm(forms.Form):
    """From, to (UTC days, both inclusive), granularity, key and model. The
    presets are links that set ``range``; the form itself sends dates."""

    granularity = forms.ChoiceField(
        label="Granularity",
        required=False,
        choices=[("hour", "Hour"), ("day", "Day"), ("month", "Month")],
    )
    key = forms.TypedChoiceField(
        label="Key", required=False, coerce=int, empty_value=None
    )
    model = forms.CharField(
        label="Model",
        required=False,
        max_length=RequestLog._meta.get_field("model").max_length,
        validators=[PlainTextValidator()],
        widget=forms.TextInput(attrs={"placeholder": "All models"}),
    )

    def __init__(self, *args, account: Account, today: date, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today
        self.fields["key"].choices = [("", "All keys")] + [
            (key.pk, key.name) for key in keys_for_account(account=account)
        ]
        # "from" is a Python keyword, so the dates cannot be class attributes;
        # the names are those of the API's query parameters.
        for name, label in (("from", "From"), ("to", "To")):
            self.fields[name] = forms.DateField(
                label=label,
                required=False,
                widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            )
        order = ["from", "to", "granularity", "key", "model"]
        self.order_fields(order)

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        preset = PRESET_BY_SLUG.get(self.data.get("range", ""))
        start, end = cleaned.get("from"), cleaned.get("to")
        if preset is None and start is None and end is None:
            preset = PRESET_BY_SLUG[DEFAULT_PRESET]
        if preset is not None:
            start, end = preset.dates(self.today)
        else:
            end = end or self.today
            start = start or end - timedelta(days=29)
        if end < start:
            self.add_error("to", "The end date is before the start date.")
            return cleaned
        if (end - start).days + 1 > MAX_DAYS:
            self.add_error("from", f"Choose a range of at most {MAX_DAYS} days.")
            return cleaned
        granularity = cleaned.get("granularity") or granularity_for(start, end)
        if granularity == "hour" and (end - start).days + 1 > MAX_HOURLY_DAYS:
            self.add_error(
                "granularity",
                f"By the hour covers at most {MAX_HOURLY_DAYS} days; "
                "choose day or month.",
            )
            return cleaned
        cleaned.update({"from": start, "to": end, "granularity": granularity})
        return cleaned


@dataclass(frozen=True)
class View:
    """The resolved view: what the script asks the API for."""

    start: date
    end: date
    granularity: str
    key: int | None
    model: str

    def query(self) -> dict[str, str]:
        """The API's query parameters (also those of the requests CSV)."""
        params = {"from": self.start.isoformat(), "to": self.end.isoformat()}
        if self.key is not None:
            params["key"] = str(self.key)
        if self.model:
            params["model"] = self.model
        return params

    def preset(self, today: date) -> str | None:
        """The preset that covers exactly this range today, if one does."""
        for preset in PRESETS:
            if preset.dates(today) == (self.start, self.end):
                return preset.slug
        return None


def _today() -> date:
    return datetime.now(tz=UTC).date()


@account_required
def cost_analytics(request, account: Account):
    today = _today()
    form = CostFilterForm(request.GET, account=account, today=today)
    view = None
    if form.is_valid():
        data = form.cleaned_data
        view = View(
            start=data["from"],
            end=data["to"],
            granularity=data["granularity"],
            key=data["key"],
            model=data["model"].strip(),
        )
        # The form shows the dates and granularity in force, preset or not.
        form = CostFilterForm(
            initial={
                "from": view.start,
                "to": view.end,
                "granularity": view.granularity,
                "key": view.key,
                "model": view.model,
            },
            account=account,
            today=today,
        )
    kept = {
        name: request.GET[name]
        for name in ("key", "model")
        if request.GET.get(name, "").strip()
    }
    context = {
        "nav": "analytics",
        "form": form,
        "view": view,
        "metrics": METRICS,
        "presets": [
            {
                "slug": preset.slug,
                "label": preset.label,
                "url": "?" + urlencode({"range": preset.slug, **kept}),
                "current": view is not None and view.preset(today) == preset.slug,
            }
            for preset in PRESETS
        ],
        "api_url": reverse("api-analytics-cost"),
        "csv_url": (
            reverse("api-requests-csv") + "?" + urlencode(view.query())
            if view
            else None
        ),
        # The ledger's side of the same days (the account's, not by key).
        "transactions_csv_url": (
            reverse("api-transactions-csv")
            + "?"
            + urlencode({"from": view.start.isoformat(), "to": view.end.isoformat()})
            if view
            else None
        ),
        "query": view.query() if view else {},
    }
    return render(
        request, "console/analytics.html", context, status=400 if form.errors else 200
    )
