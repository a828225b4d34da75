"""REST: cost analytics (``GET /api/v1/analytics/cost``), read from the daily and
hourly usage rollups (``proxy.analytics``)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from django.http import QueryDict
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import AccountRequired
from money import nanos_to_usd
from money.fields import UsdField
from proxy import analytics
from proxy.analytics import GRANULARITIES, GROUPINGS, KINDS, CostReport, Usage
from proxy.filters import LogFilters, Refused, log_filters_from, moment_parse, shown

# The request logs' filters that the rollups can answer.
FILTERS = ("key", "model", "provider")
DEFAULT_DAYS = 30
MAX_RANGE = timedelta(days=400)
# An hour per bucket: a month of them at most (744 buckets).
MAX_HOURLY_RANGE = timedelta(days=31)


# --- the answer's shape (for the OpenAPI schema; the view writes plain JSON) --


@extend_schema_field(
    {
        "type": "string",
        "format": "decimal",
        "nullable": True,
        "example": "0.000412500",
        "description": "USD, rounded half to even to the nano; null when there "
        "is nothing to divide by",
    }
)
class AverageField(serializers.Field):
    pass


class CostTotalsSerializer(serializers.Serializer):
    cost = UsdField()
    input_cost = UsdField(help_text="Uncached prompt tokens")
    output_cost = UsdField(help_text="Completion tokens, reasoning included")
    other_cost = UsdField(help_text="Cached prompt tokens and cache writes")
    requests = serializers.IntegerField(help_text="Errors included")
    tokens = serializers.IntegerField(help_text="Prompt and completion tokens")
    avg_cost_per_request = AverageField()
    avg_cost_per_million_tokens = AverageField()


class CostPreviousSerializer(CostTotalsSerializer):
    from_ = serializers.DateTimeField(help_text="Start, inclusive")
    to = serializers.DateTimeField(help_text="End, exclusive: the range's start")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


class CostPointSerializer(serializers.Serializer):
    t = serializers.DateTimeField(help_text="The bucket's start (UTC)")
    group = serializers.CharField(
        help_text="The model, provider, key id, or kind of token: " + ", ".join(KINDS)
    )
    label = serializers.CharField(
        help_text="For people: the key's name (a deleted key's too), the kind's "
        "name; else the group"
    )
    cost = UsdField()
    requests = serializers.IntegerField(
        help_text="By kind of token: the bucket's requests on each kind"
    )
    input_tokens = serializers.IntegerField(
        help_text="Prompt tokens (by kind: that kind's)"
    )
    output_tokens = serializers.IntegerField(help_text="Completion tokens")


class CostModelRowSerializer(serializers.Serializer):
    model = serializers.CharField()
    calls = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cost = UsdField()
    cost_per_call = AverageField()


class CostAnalyticsSerializer(serializers.Serializer):
    from_ = serializers.DateTimeField(help_text="Start, inclusive (UTC)")
    to = serializers.DateTimeField(help_text="End, exclusive (UTC)")
    granularity = serializers.ChoiceField(choices=GRANULARITIES)
    group_by = serializers.ChoiceField(choices=GROUPINGS)
    totals = CostTotalsSerializer()
    previous = CostPreviousSerializer(
        help_text="The totals of the period of equal length just before"
    )
    buckets = serializers.ListField(
        child=serializers.DateTimeField(),
        help_text="Every bucket's start in the range, with usage or not",
    )
    series = CostPointSerializer(
        many=True, help_text="Buckets × groups with usage, by time then group"
    )
    models = CostModelRowSerializer(many=True, help_text="By cost, highest first")

    def get_fields(self):
        fields = super().get_fields()
        fields = {"from": fields.pop("from_"), **fields}
        return fields


# --- parameters ---------------------------------------------------------------


def _bound(params, name: str, *, end: bool) -> datetime | None:
    """``from`` or ``to`` as an aware UTC datetime on a whole hour. A date is
    its whole day (``to=2026-01-31`` ends when the 31st does); a date-time is
    the moment itself, ``to`` exclusive."""
    try:
        return moment_parse((params.get(name) or "").strip(), end=end, hourly=True)
    except Refused as refused:
        raise ValidationError({name: [str(refused)]}) from None


def _choice(params, name: str, choices: tuple[str, ...], default: str) -> str:
    value = (params.get(name) or "").strip()
    if not value:
        return default
    if value not in choices:
        raise ValidationError(
            {name: [f"{shown(value)} is not one of: {', '.join(choices)}."]}
        )
    return value


def _filters(params) -> LogFilters:
    """``key`` (one or several), ``model`` and ``provider``, read as the
    request logs read them."""
    subset = QueryDict(mutable=True)
    for name in FILTERS:
        subset.setlist(name, params.getlist(name))
    return log_filters_from(subset)


def _range(params, granularity: str) -> tuple[datetime, datetime]:
    """``[from, to)``: by default the last 30 days, today (UTC) included."""
    since = _bound(params, "from", end=False)
    until = _bound(params, "to", end=True)
    # The parameter to name in an error: the one the caller gave.
    named = "to" if until is not None or since is None else "from"
    if until is None:
        today = timezone.now().astimezone(UTC).date()
        until = datetime.combine(today, time.min, tzinfo=UTC) + timedelta(days=1)
    if since is None:
        since = until - timedelta(days=DEFAULT_DAYS)
    if until <= since:
        if named == "to":
            raise ValidationError({"to": ["Must be after from."]})
        raise ValidationError(
            {"from": ["Must be before to (by default the end of today, UTC)."]}
        )
    if until - since > MAX_RANGE:
        raise ValidationError(
            {named: [f"The range is at most {MAX_RANGE.days} days long."]}
        )
    if granularity == "hour" and until - since > MAX_HOURLY_RANGE:
        raise ValidationError(
            {
                "granularity": [
                    f"hour covers at most {MAX_HOURLY_RANGE.days} days; ask for "
                    "day or month over a longer range."
                ]
            }
        )
    try:
        since - (until - since)  # the previous period must exist too
    except OverflowError:
        raise ValidationError({"from": ["Too early."]}) from None
    return since, until


# --- the answer -----------------------------------------------------------------


def _moment(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _average(nanos: int | None) -> str | None:
    return None if nanos is None else nanos_to_usd(nanos)


def _totals(usage: Usage) -> dict:
    return {
        "cost": nanos_to_usd(usage.cost),
        "input_cost": nanos_to_usd(usage.input_cost),
        "output_cost": nanos_to_usd(usage.output_cost),
        "other_cost": nanos_to_usd(usage.other_cost),
        "requests": usage.requests,
        "tokens": usage.tokens,
        "avg_cost_per_request": _average(usage.avg_cost_per_request),
        "avg_cost_per_million_tokens": _average(usage.avg_cost_per_million_tokens),
    }


def report_json(report: CostReport) -> dict:
    return {
        "from": _moment(report.since),
        "to": _moment(report.until),
        "granularity": report.granularity,
        "group_by": report.group_by,
        "totals": _totals(report.totals),
        "previous": {
            "from": _moment(report.previous_since),
            "to": _moment(report.since),
            **_totals(report.previous),
        },
        "buckets": [_moment(t) for t in report.buckets],
        "series": [
            {
                "t": _moment(point.t),
                "group": point.group,
                "label": point.label,
                "cost": nanos_to_usd(point.cost),
                "requests": point.requests,
                "input_tokens": point.input_tokens,
                "output_tokens": point.output_tokens,
            }
            for point in report.series
        ],
        "models": [
            {
                "model": row.model,
                "calls": row.usage.requests,
                "input_tokens": row.usage.prompt_tokens,
                "output_tokens": row.usage.completion_tokens,
                "cost": nanos_to_usd(row.usage.cost),
                "cost_per_call": _average(row.usage.avg_cost_per_request),
            }
            for row in report.models
        ],
    }


class CostAnalyticsView(AccountRequired, APIView):
    """What the account spent over a range (UTC), by hour, day or month,
    grouped by model, key, provider or kind of token; the totals, the totals
    of the period of equal length before, and a table by model. Read from
    hourly sums, so ``from`` and ``to`` fall on whole hours; a key of another
    account finds nothing, as in the request logs."""

    @extend_schema(
        operation_id="analytics_cost",
        parameters=[
            OpenApiParameter(
                "from",
                OpenApiTypes.STR,
                description="ISO 8601 date (its whole day) or date-time on a whole "
                "hour (UTC unless an offset is given), inclusive. Default: 30 "
                "days before to",
            ),
            OpenApiParameter(
                "to",
                OpenApiTypes.STR,
                description="ISO 8601 date, inclusive (its whole day), or date-time "
                "on a whole hour, exclusive. Default: the end of today (UTC). At "
                f"most {MAX_RANGE.days} days after from",
            ),
            OpenApiParameter(
                "granularity",
                OpenApiTypes.STR,
                enum=list(GRANULARITIES),
                description="Buckets of the series (UTC; month: calendar months). "
                f"Default: day. hour covers at most {MAX_HOURLY_RANGE.days} days",
            ),
            OpenApiParameter(
                "group_by",
                OpenApiTypes.STR,
                enum=list(GROUPINGS),
                description="Groups of the series; type: one point per kind of "
                "token (" + ", ".join(KINDS) + ") per bucket. Default: model",
            ),
            OpenApiParameter(
                "key",
                OpenApiTypes.STR,
                description="A key id; several may be given (key=1&key=2, or "
                "key=1,2). A key of another account finds nothing",
            ),
            OpenApiParameter(
                "model", OpenApiTypes.STR, description="e.g. openai/gpt-5"
            ),
            OpenApiParameter("provider", OpenApiTypes.STR, description="e.g. openai"),
        ],
        responses=CostAnalyticsSerializer,
    )
    def get(self, request):
        params = request.query_params
        granularity = _choice(params, "granularity", GRANULARITIES, "day")
        group_by = _choice(params, "group_by", GROUPINGS, "model")
        filters = _filters(params)
        since, until = _range(params, granularity)
        report = analytics.cost_report(
            account=self.account,
            since=since,
            until=until,
            granularity=granularity,
            group_by=group_by,
            key_ids=filters.key_ids,
            model=filters.model,
            provider=filters.provider,
        )
        return Response(report_json(report))
