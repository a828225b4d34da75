"""The model catalog (providers, models, price versions) and request logs."""

from __future__ import annotations

import uuid

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Account
from apikeys.models import ApiKey


class Provider(models.Model):
    """An OpenAI-compatible upstream. Its credential is read from the
    environment variable it names, never stored in the database."""

    name = models.SlugField(max_length=50, unique=True)
    base_url = models.URLField(max_length=300)
    api_key_env = models.CharField(
        max_length=100,
        blank=True,
        help_text="Environment variable holding the upstream API key",
    )
    connect_timeout_seconds = models.FloatField(default=10)
    read_timeout_seconds = models.FloatField(
        default=300, help_text="Longest wait for the next bytes of a response"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class ModelKind(models.TextChoices):
    CHAT = "chat", "Chat completions"
    EMBEDDING = "embedding", "Embeddings"


class CatalogModel(models.Model):
    """A model as customers call it: ``provider/model``."""

    id = models.CharField(max_length=100, primary_key=True)
    provider = models.ForeignKey(
        Provider, on_delete=models.PROTECT, related_name="models"
    )
    upstream = models.CharField(max_length=100, help_text="The model name upstream")
    kind = models.CharField(max_length=10, choices=ModelKind.choices, default="chat")
    context_length = models.PositiveIntegerField()
    max_output_tokens = models.PositiveIntegerField(default=0)
    tokenizer = models.CharField(
        max_length=20,
        default="o200k_base",
        help_text="tiktoken encoding used to count output when usage is estimated",
    )
    image_tokens_max = models.PositiveIntegerField(
        default=2_000,
        help_text="the most prompt tokens one image may cost on this model "
        "(its hold counts this per image)",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "model"
        ordering = ["id"]

    def __str__(self) -> str:
        return self.id


class ModelPrice(models.Model):
    """Prices per 1M tokens in nano-USD, from ``effective_from`` on. A change of
    price is a new row, so a request is billed at the price of its time."""

    model = models.ForeignKey(
        CatalogModel, on_delete=models.PROTECT, related_name="prices"
    )
    effective_from = models.DateTimeField(default=timezone.now)
    input_nanos = models.BigIntegerField()
    cached_input_nanos = models.BigIntegerField()
    cache_write_nanos = models.BigIntegerField()
    output_nanos = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "effective_from"], name="price_version_unique"
            ),
            models.CheckConstraint(
                condition=Q(input_nanos__gte=0)
                & Q(cached_input_nanos__gte=0)
                & Q(cache_write_nanos__gte=0)
                & Q(output_nanos__gte=0),
                name="price_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_id} from {self.effective_from:%Y-%m-%d %H:%M}"


class RequestLog(models.Model):
    """One request to /v1: who, what, how it went and what it cost. No request
    or response bodies (an account that asks for them has them apart, in
    ``RequestBody``).

    The table is partitioned by month of ``created_at`` (PostgreSQL declarative
    partitioning; its primary key is ``(id, created_at)``), so that retention
    drops whole months (``proxy.retention``). The id is a UUIDv7 made when the
    request arrived: it is the ``X-Request-Id`` of the request's answer, and its
    first 48 bits are that moment in milliseconds."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    api_key = models.ForeignKey(
        ApiKey, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    model = models.CharField(max_length=100)
    provider = models.CharField(max_length=50)
    endpoint = models.CharField(max_length=40)
    status = models.PositiveSmallIntegerField()
    error = models.CharField(max_length=300, blank=True)
    streamed = models.BooleanField(default=False)
    prompt_tokens = models.IntegerField(default=0)
    cached_tokens = models.IntegerField(default=0)
    cache_write_tokens = models.IntegerField(default=0)
    completion_tokens = models.IntegerField(default=0)
    reasoning_tokens = models.IntegerField(default=0)
    usage_estimated = models.BooleanField(default=False)
    cost_nanos = models.BigIntegerField(default=0)
    cost_topup_nanos = models.BigIntegerField(default=0)
    cost_bonus_nanos = models.BigIntegerField(default=0)
    # A charge never exceeds the request's hold: what its usage would have
    # cost beyond it (an upstream that over-reports) is kept here, not charged.
    uncapped_cost_nanos = models.BigIntegerField(
        default=0,
        db_default=0,
        help_text="What the usage reported costs, before the cap at the hold",
    )
    over_reported = models.BooleanField(
        default=False,
        db_default=False,
        help_text="The usage cost more than the request's hold: it was charged "
        "the hold",
    )
    # The charge by kind of token: their sum is cost_nanos, exactly. A charge
    # cut short (at the hold, or by the balance) is taken from the kinds in
    # this order, the output last.
    input_cost_nanos = models.BigIntegerField(default=0, db_default=0)
    cached_cost_nanos = models.BigIntegerField(default=0, db_default=0)
    cache_write_cost_nanos = models.BigIntegerField(default=0, db_default=0)
    output_cost_nanos = models.BigIntegerField(default=0, db_default=0)
    latency_ms = models.IntegerField(default=0)
    ttft_ms = models.IntegerField(null=True, blank=True)
    finish_reason = models.CharField(max_length=40, blank=True, db_default="")
    cancelled = models.BooleanField(
        default=False, db_default=False, help_text="The client went away first"
    )
    upstream_model = models.CharField(max_length=100, blank=True, db_default="")
    max_tokens = models.IntegerField(
        null=True,
        blank=True,
        help_text="The output limit the request asked for (max_completion_tokens "
        "or max_tokens, the larger); empty if it set none",
    )
    price = models.ForeignKey(
        ModelPrice,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
        help_text="The price version the request was billed at",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(
                fields=["account", "-created_at", "-id"], name="log_account_time"
            ),
            models.Index(fields=["api_key", "-created_at", "-id"], name="log_key_time"),
            # Operators' list of over-reported requests; few rows, small index.
            models.Index(
                fields=["-created_at"],
                condition=Q(over_reported=True),
                name="log_over_reported",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} {self.status} ({self.id})"


class UsageSums(models.Model):
    """What a rollup row sums of the request logs it counts."""

    requests = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0, help_text="Answered 400 or above")
    prompt_tokens = models.BigIntegerField(default=0)
    cached_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    reasoning_tokens = models.BigIntegerField(default=0)
    cost_nanos = models.BigIntegerField(default=0)
    input_cost_nanos = models.BigIntegerField(default=0)
    cached_cost_nanos = models.BigIntegerField(default=0)
    cache_write_cost_nanos = models.BigIntegerField(default=0)
    output_cost_nanos = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class UsageRollup(UsageSums):
    """An account's usage per key × model × provider × hour (UTC): what cost
    analytics read instead of the request logs. What a settlement batch adds
    is appended in its transaction (``UsageDelta``) and folded in here moments
    later; readers add the deltas not folded yet, so it is exact and never
    lags. Kept when retention drops the logs."""

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    hour = models.DateTimeField()
    api_key = models.ForeignKey(
        ApiKey, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    model = models.CharField(max_length=100)
    provider = models.CharField(max_length=50)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "hour", "api_key", "model", "provider"],
                name="rollup_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.hour:%Y-%m-%d %H}:00 {self.model}"


class UsageDelta(UsageSums):
    """What one settlement batch adds to the hourly rollups, appended in the
    batch's own transaction (``proxy_batch``) and folded into ``UsageRollup``
    moments later (``proxy_usage_fold``, a beat task). Appending is what keeps
    the settle path fast: an update of an account's hour row by every batch
    would make one hot row, and its day's, that every batch waits on and
    rewrites. Readers add the deltas not yet folded to the rollups, so what
    they count is exact and never lags; folding changes no sum.

    Its keys are not constrained (the batch wrote the log rows that name the
    same account and key a statement earlier, checked)."""

    id = models.BigAutoField(primary_key=True)
    account = models.ForeignKey(
        Account,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    hour = models.DateTimeField()
    api_key = models.ForeignKey(
        ApiKey,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    model = models.CharField(max_length=100)
    provider = models.CharField(max_length=50)

    class Meta:
        indexes = [models.Index(fields=["account", "hour"], name="usage_delta_account")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.hour:%Y-%m-%d %H}:00 {self.model} (unfolded)"


class UsageRollupDay(UsageSums):
    """The hourly rollups summed by day (UTC), kept by a trigger on
    ``UsageRollup`` (``proxy_usagerollup_to_day``): in the same transaction, so
    always their exact sum. Long ranges read these (a 90-day range of an account
    is 90 × its keys × models rows, not 2,160 ×)."""

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    day = models.DateField()
    api_key = models.ForeignKey(
        ApiKey, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    model = models.CharField(max_length=100)
    provider = models.CharField(max_length=50)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "day", "api_key", "model", "provider"],
                name="rollup_day_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.day} {self.model}"


class BodyRetention(models.Model):
    """An account's choice to keep its requests' and responses' bodies, and
    for how many days. Without a row (the default), none is kept."""

    account = models.OneToOneField(
        Account, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    enabled = models.BooleanField(default=False)
    days = models.PositiveSmallIntegerField(
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(30)],
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(days__gte=1) & Q(days__lte=30), name="body_days_1_to_30"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}: {'on' if self.enabled else 'off'}"


class RequestBody(models.Model):
    """A request's body and its answer's (a JSON body, or the events of a
    stream), zlib-compressed; kept only for an account whose
    ``BodyRetention`` is on, and deleted when its days pass."""

    request_id = models.UUIDField(primary_key=True)
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    request = models.BinaryField()
    response = models.BinaryField()
    truncated = models.BooleanField(
        default=False, help_text="A body was longer than what is kept of it"
    )

    class Meta:
        indexes = [models.Index(fields=["account"], name="body_account")]

    def __str__(self) -> str:
        return f"bodies of {self.request_id}"
