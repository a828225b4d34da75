"""Operators' view of the catalog and the request logs.

Prices are never edited in place: on a model's page, existing price versions
are read-only and a change of price is a new version with its own
``effective_from``. Request logs, usage rollups and the accounts' body
retention switches are read-only. The kept bodies themselves have no page:
what customers' requests said is theirs (an account's switch shows how many it
keeps and their size).
"""

from __future__ import annotations

import os
from datetime import timedelta

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AdminSplitDateTime
from django.db import models
from django.db.models import Count, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce, Length, Now
from django.utils import timezone

from billing.ledger.admin import ReadOnlyAdmin
from money import MoneyError, format_usd, nanos_to_decimal, usd_to_nanos
from proxy.catalog_file import ENV_VAR_NAME, model_id_problem
from proxy.models import (
    BodyRetention,
    CatalogModel,
    ModelPrice,
    Provider,
    RequestBody,
    RequestLog,
    UsageRollup,
)

# A version's start may lie this far in the past: the time it took to fill in
# the form. Further back it would rewrite the price of requests already made.
BACKDATE_TOLERANCE = timedelta(minutes=10)
PRICE_FIELDS = ("input", "cached_input", "cache_write", "output")


def usd_per_million(nanos: int | None) -> str:
    """ "$1.25", "$10.00", "$0.005": at least cents, no trailing zeros beyond."""
    if nanos is None:
        return "-"
    text = f"{nanos_to_decimal(abs(nanos)):f}".rstrip("0")
    whole, _, fraction = text.partition(".")
    sign = "-" if nanos < 0 else ""
    return f"{sign}${int(whole):,}.{fraction.ljust(2, '0')}"


# --- Providers ------------------------------------------------------------------


class ProviderForm(forms.ModelForm):
    # No Meta: the admin builds it, with formfield_overrides below.

    def clean_api_key_env(self) -> str:
        name = self.cleaned_data["api_key_env"].strip()
        # Catches a key pasted where its variable's name belongs.
        if name and not ENV_VAR_NAME.match(name):
            raise forms.ValidationError(
                "The name of an environment variable, e.g. OPENAI_API_KEY - "
                "never the key itself."
            )
        return name

    def clean_connect_timeout_seconds(self) -> float:
        return _positive(self.cleaned_data["connect_timeout_seconds"])

    def clean_read_timeout_seconds(self) -> float:
        return _positive(self.cleaned_data["read_timeout_seconds"])


def _positive(value: float) -> float:
    if value <= 0:
        raise forms.ValidationError("Must be a positive number of seconds.")
    return value


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    form = ProviderForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fields = (
        "name",
        "base_url",
        "api_key_env",
        "credential_set",
        "connect_timeout_seconds",
        "read_timeout_seconds",
        "created_at",
    )
    list_display = (
        "name",
        "base_url",
        "api_key_env",
        "credential_set",
        "connect_timeout_seconds",
        "read_timeout_seconds",
    )
    search_fields = ("name", "base_url")
    readonly_fields = ("credential_set", "created_at")

    @admin.display(boolean=True, description="key set in environment")
    def credential_set(self, obj: Provider) -> bool | None:
        # Only whether the variable is set: its value never reaches a page.
        if obj is None or not obj.api_key_env:
            return None
        return bool(os.environ.get(obj.api_key_env))


# --- Models and their price versions --------------------------------------------


class PriceVersionForm(forms.ModelForm):
    """A new price version, typed in USD per 1M tokens."""

    effective_from = forms.SplitDateTimeField(
        required=False,
        widget=AdminSplitDateTime,
        help_text="Blank: now. A future time schedules the change.",
    )
    input = forms.CharField(label="input $/1M", required=False)
    cached_input = forms.CharField(
        label="cached input $/1M", required=False, help_text="Blank: the input price."
    )
    cache_write = forms.CharField(
        label="cache write $/1M", required=False, help_text="Blank: the input price."
    )
    output = forms.CharField(label="output $/1M", required=False)

    class Meta:
        model = ModelPrice
        fields = ("effective_from",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance._state.adding:
            # An existing version is shown read-only and never saved again.
            self.fields.clear()
        # Not the model's default (the time the page was drawn): blank means
        # now, and an untouched add row stays unchanged.
        self.initial.pop("effective_from", None)

    def clean(self):
        data = super().clean()
        if not self.instance._state.adding:
            return data
        nanos = {}
        for name in PRICE_FIELDS:
            raw = (data.get(name) or "").strip()
            if not raw:
                if name in ("input", "output"):
                    self.add_error(name, "Required.")
                continue
            try:
                # Negative prices get their own message below.
                nanos[name] = usd_to_nanos(raw, signed=True)
            except MoneyError as error:
                self.add_error(name, f"A decimal amount in USD: {error}.")
                continue
            if nanos[name] < 0:
                self.add_error(name, "Must not be negative.")
        if self.errors:
            return data

        now = timezone.now()
        effective_from = data.get("effective_from") or now
        if effective_from < now - BACKDATE_TOLERANCE:
            self.add_error(
                "effective_from",
                "A price version cannot start in the past: leave it blank for now.",
            )
            return data
        model_id = self.instance.model_id
        if (
            model_id
            and ModelPrice.objects.filter(
                model_id=model_id, effective_from=effective_from
            ).exists()
        ):
            self.add_error("effective_from", "A version already starts at this time.")
            return data
        data["effective_from"] = effective_from
        self.instance.input_nanos = nanos["input"]
        self.instance.cached_input_nanos = nanos.get("cached_input", nanos["input"])
        self.instance.cache_write_nanos = nanos.get("cache_write", nanos["input"])
        self.instance.output_nanos = nanos["output"]
        return data


class PriceVersionInline(admin.TabularInline):
    """Existing versions are shown read-only (no change permission); an empty
    row adds a version."""

    model = ModelPrice
    form = PriceVersionForm
    fields = ("effective_from", *PRICE_FIELDS)
    extra = 1
    can_delete = False
    ordering = ("-effective_from",)
    verbose_name = "price version"
    verbose_name_plural = (
        "price versions (USD per 1M tokens; to change a price, add a version)"
    )

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    # Shown for existing rows, in place of the form fields of the add row.
    @admin.display(description="input $/1M")
    def input(self, obj: ModelPrice) -> str:
        return usd_per_million(obj.input_nanos)

    @admin.display(description="cached input $/1M")
    def cached_input(self, obj: ModelPrice) -> str:
        return usd_per_million(obj.cached_input_nanos)

    @admin.display(description="cache write $/1M")
    def cache_write(self, obj: ModelPrice) -> str:
        return usd_per_million(obj.cache_write_nanos)

    @admin.display(description="output $/1M")
    def output(self, obj: ModelPrice) -> str:
        return usd_per_million(obj.output_nanos)


class CatalogModelForm(forms.ModelForm):
    class Meta:
        model = CatalogModel
        fields = (
            "id",
            "provider",
            "upstream",
            "kind",
            "context_length",
            "max_output_tokens",
            "tokenizer",
            "image_tokens_max",
            "active",
        )

    def clean(self):
        data = super().clean()
        model_id = data.get("id") or self.instance.id
        provider = data.get("provider") or getattr(self.instance, "provider", None)
        if model_id and provider:
            problem = model_id_problem(model_id, provider.name)
            if problem:
                self.add_error("id" if "id" in self.fields else None, problem)
        if data.get("context_length") == 0:
            self.add_error("context_length", "Must be positive.")
        return data


def _current_price(field: str) -> Subquery:
    return Subquery(
        ModelPrice.objects.filter(model=OuterRef("pk"), effective_from__lte=Now())
        .order_by("-effective_from")
        .values(field)[:1]
    )


def _price_column(attribute: str, label: str):
    @admin.display(description=label, ordering=attribute)
    def show(obj) -> str:
        return usd_per_million(getattr(obj, attribute))

    return show


@admin.register(CatalogModel)
class CatalogModelAdmin(admin.ModelAdmin):
    form = CatalogModelForm
    inlines = (PriceVersionInline,)
    list_display = (
        "id",
        "provider",
        "upstream",
        "kind",
        "context_length",
        "max_output_tokens",
        _price_column("current_input_nanos", "input $/1M"),
        _price_column("current_cached_input_nanos", "cached input $/1M"),
        _price_column("current_cache_write_nanos", "cache write $/1M"),
        _price_column("current_output_nanos", "output $/1M"),
        "active",
    )
    list_filter = ("provider", "kind", "active")
    search_fields = ("id", "upstream")
    list_select_related = ("provider",)
    readonly_fields = ("current_price", "created_at")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                **{
                    f"current_{name}_nanos": _current_price(f"{name}_nanos")
                    for name in PRICE_FIELDS
                }
            )
        )

    def get_readonly_fields(self, request, obj=None):
        # The id is the name customers call; a new id is a new model.
        if obj is not None:
            return ("id", "provider", *self.readonly_fields)
        return self.readonly_fields

    @admin.display(description="current price (USD per 1M tokens)")
    def current_price(self, obj: CatalogModel) -> str:
        if getattr(obj, "current_input_nanos", None) is None:
            return "no price in force"
        return (
            f"input {usd_per_million(obj.current_input_nanos)}, "
            f"cached input {usd_per_million(obj.current_cached_input_nanos)}, "
            f"cache write {usd_per_million(obj.current_cache_write_nanos)}, "
            f"output {usd_per_million(obj.current_output_nanos)}"
        )

    def has_delete_permission(self, request, obj=None):
        # Logs and price history refer to models: deactivate one instead.
        return False


@admin.register(ModelPrice)
class ModelPriceAdmin(ReadOnlyAdmin):
    list_display = (
        "model",
        "effective_from",
        _price_column("input_nanos", "input $/1M"),
        _price_column("cached_input_nanos", "cached input $/1M"),
        _price_column("cache_write_nanos", "cache write $/1M"),
        _price_column("output_nanos", "output $/1M"),
        "created_at",
    )
    list_filter = ("model__provider", "model")
    search_fields = ("model__id",)
    list_select_related = ("model",)


# --- Request logs ---------------------------------------------------------------


@admin.register(RequestLog)
class RequestLogAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "account",
        "api_key",
        "model",
        "status",
        "tokens",
        "cost",
        "streamed",
        "usage_estimated",
        "over_reported",
        "latency",
    )
    # "over reported": requests whose usage cost more than their hold (an
    # upstream that reports more than it could have used); charged the hold.
    list_filter = ("model", "status", "streamed", "usage_estimated", "over_reported")
    search_fields = ("account__owner__email",)
    list_select_related = ("account__owner", "api_key")
    ordering = ("-created_at",)
    # Counting every log for "N total" is slow once there are many.
    show_full_result_count = False

    @admin.display(description="tokens (in / cached / out / reasoning)")
    def tokens(self, obj: RequestLog) -> str:
        return (
            f"{obj.prompt_tokens:,} / {obj.cached_tokens:,} / "
            f"{obj.completion_tokens:,} / {obj.reasoning_tokens:,}"
        )

    @admin.display(description="cost", ordering="cost_nanos")
    def cost(self, obj: RequestLog) -> str:
        if obj.over_reported:
            return (
                f"{format_usd(obj.cost_nanos, 9)} "
                f"(reported {format_usd(obj.uncapped_cost_nanos, 9)})"
            )
        return format_usd(obj.cost_nanos, 9)

    @admin.display(description="latency", ordering="latency_ms")
    def latency(self, obj: RequestLog) -> str:
        return f"{obj.latency_ms:,} ms"


# --- Usage rollups and body retention -------------------------------------------


@admin.register(UsageRollup)
class UsageRollupAdmin(ReadOnlyAdmin):
    list_display = (
        "hour",
        "account",
        "api_key",
        "model",
        "provider",
        "requests",
        "errors",
        "tokens",
        "cost",
    )
    list_filter = ("provider", "model")
    search_fields = ("account__owner__email",)
    list_select_related = ("account__owner", "api_key")
    ordering = ("-hour",)
    date_hierarchy = "hour"
    show_full_result_count = False

    @admin.display(description="tokens (in / cached / out / reasoning)")
    def tokens(self, obj: UsageRollup) -> str:
        return (
            f"{obj.prompt_tokens:,} / {obj.cached_tokens:,} / "
            f"{obj.completion_tokens:,} / {obj.reasoning_tokens:,}"
        )

    @admin.display(description="cost", ordering="cost_nanos")
    def cost(self, obj: UsageRollup) -> str:
        return format_usd(obj.cost_nanos, 9)


def _bodies_of_account(aggregate) -> Subquery:
    return Subquery(
        RequestBody.objects.filter(account=OuterRef("account"))
        .values("account")
        .annotate(value=aggregate)
        .values("value")[:1]
    )


@admin.register(BodyRetention)
class BodyRetentionAdmin(ReadOnlyAdmin):
    """Which accounts keep bodies, for how long, and how much they keep: never
    what the bodies say."""

    list_display = ("account", "enabled", "days", "bodies", "size", "updated_at")
    list_filter = ("enabled",)
    search_fields = ("account__owner__email",)
    list_select_related = ("account__owner",)
    ordering = ("-updated_at",)
    fields = ("account", "enabled", "days", "bodies", "size", "updated_at")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                bodies_kept=Coalesce(_bodies_of_account(Count("request_id")), 0),
                bytes_kept=Coalesce(
                    _bodies_of_account(Sum(Length("request") + Length("response"))),
                    0,
                ),
            )
        )

    @admin.display(description="bodies kept", ordering="bodies_kept")
    def bodies(self, obj: BodyRetention) -> str:
        return f"{obj.bodies_kept:,}"

    @admin.display(description="size (compressed)", ordering="bytes_kept")
    def size(self, obj: BodyRetention) -> str:
        return f"{obj.bytes_kept / 2**20:,.1f} MB"
