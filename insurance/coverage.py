"""Which requests are covered, and by which rule: the rules of the package's
docstring as code, judged on a request log's own fields.

The rules are read once per run into a ``RuleBook``: a model's own rule of a
kind, else the default rule of that kind (``model`` empty). The daily scan
asks PostgreSQL only for the day's logs that could match any enabled rule
(``candidates_q``: the loosest thresholds of all), then judges each here with
the rules of its model (``covering_rule``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import F, Q

from insurance.models import CoverageRule, RuleKind

# What an answer that ended in a tool call says; such an answer has no text
# and is not empty.
TOOL_CALL_REASONS = ("tool_calls", "function_call", "tool_use")
# What an answer cut at its output limit says (OpenAI's, Anthropic's).
LENGTH_REASONS = ("length", "max_tokens")
# Endpoints whose answers are not text: never "empty".
NO_TEXT_ENDPOINTS = ("embeddings",)
# The order of preference among rules that pay the same share.
KIND_ORDER = [kind.value for kind in RuleKind]


@dataclass(frozen=True)
class Rule:
    kind: str
    payout_percent: int
    ttft_ms: int | None = None
    latency_ms: int | None = None
    truncated_percent: int | None = None

    @classmethod
    def of(cls, row: CoverageRule) -> Rule:
        return cls(
            kind=row.kind,
            payout_percent=row.payout_percent,
            ttft_ms=row.ttft_ms,
            latency_ms=row.latency_ms,
            truncated_percent=row.truncated_percent,
        )


@dataclass(frozen=True)
class LogFacts:
    """What the rules read of a request log (``LOG_FIELDS``)."""

    id: object
    created_at: object
    account_id: int
    model: str
    endpoint: str
    status: int
    streamed: bool
    cancelled: bool
    ttft_ms: int | None
    latency_ms: int
    completion_tokens: int
    reasoning_tokens: int
    finish_reason: str
    max_tokens: int | None
    cost_nanos: int


LOG_FIELDS = [name for name in LogFacts.__dataclass_fields__]


def rule_matches(rule: Rule, log: LogFacts) -> bool:
    """Does ``rule`` cover ``log``? Never a request the client cancelled, nor
    one that cost nothing (there is nothing to pay back)."""
    if log.cancelled or log.cost_nanos <= 0:
        return False
    if rule.kind == RuleKind.STREAM_FAILURE:
        began = log.ttft_ms is not None or log.completion_tokens > 0
        return log.streamed and log.status == 502 and began
    if log.status != 200:
        return False
    if rule.kind == RuleKind.EMPTY_OUTPUT:
        return (
            log.endpoint not in NO_TEXT_ENDPOINTS
            and log.completion_tokens - log.reasoning_tokens <= 0
            and log.finish_reason not in TOOL_CALL_REASONS
        )
    if rule.kind == RuleKind.TRUNCATED_OUTPUT:
        return (
            rule.truncated_percent is not None
            and log.finish_reason in LENGTH_REASONS
            and log.max_tokens is not None
            and log.max_tokens > 0
            and log.completion_tokens * 100 < rule.truncated_percent * log.max_tokens
        )
    if rule.kind == RuleKind.HIGH_LATENCY:
        slow_start = (
            rule.ttft_ms is not None
            and log.ttft_ms is not None
            and log.ttft_ms > rule.ttft_ms
        )
        slow_whole = rule.latency_ms is not None and log.latency_ms > rule.latency_ms
        return slow_start or slow_whole
    return False


def payout_nanos(cost_nanos: int, percent: int) -> int:
    """The share of a cost paid back, rounded down to a whole nano."""
    return cost_nanos * percent // 100


class RuleBook:
    """The enabled rules in force for each model."""

    def __init__(self, rows: Iterable[CoverageRule]):
        self._defaults: dict[str, CoverageRule] = {}
        self._own: dict[tuple[str, str], CoverageRule] = {}
        for row in rows:
            if row.model:
                self._own[(row.model, row.kind)] = row
            else:
                self._defaults[row.kind] = row
        self._cache: dict[str, list[Rule]] = {}

    def rules_for(self, model: str) -> list[Rule]:
        if model not in self._cache:
            rules = []
            for kind in KIND_ORDER:
                row = self._own.get((model, kind)) or self._defaults.get(kind)
                if row is not None and row.enabled:
                    rules.append(Rule.of(row))
            self._cache[model] = rules
        return self._cache[model]

    def _enabled(self, kind: str) -> list[CoverageRule]:
        rows = [*self._defaults.values(), *self._own.values()]
        return [row for row in rows if row.kind == kind and row.enabled]

    def candidates_q(self) -> Q | None:
        """A filter of the request logs that keeps every log some enabled rule
        could cover (and, for high latency, those slower than the lowest
        threshold of any model); None when no rule is enabled."""
        paid = Q(cost_nanos__gt=0, cancelled=False)
        answered = Q(status=200)
        parts = []
        if self._enabled(RuleKind.STREAM_FAILURE):
            parts.append(Q(status=502, streamed=True))
        if self._enabled(RuleKind.EMPTY_OUTPUT):
            parts.append(answered & Q(completion_tokens__lte=F("reasoning_tokens")))
        if self._enabled(RuleKind.TRUNCATED_OUTPUT):
            parts.append(
                answered & Q(finish_reason__in=LENGTH_REASONS, max_tokens__isnull=False)
            )
        slow = self._enabled(RuleKind.HIGH_LATENCY)
        ttfts = [row.ttft_ms for row in slow if row.ttft_ms is not None]
        latencies = [row.latency_ms for row in slow if row.latency_ms is not None]
        if ttfts:
            parts.append(answered & Q(ttft_ms__gt=min(ttfts)))
        if latencies:
            parts.append(answered & Q(latency_ms__gt=min(latencies)))
        if not parts:
            return None
        either = parts[0]
        for part in parts[1:]:
            either |= part
        return paid & either


def covering_rule(book: RuleBook, log: LogFacts) -> Rule | None:
    """The one rule a request is paid by: of the rules of its model that
    cover it, the one that pays the largest share; between equal shares, the
    first in ``RuleKind``'s order (upstream failure, empty output, truncated
    output, high latency)."""
    matching = [rule for rule in book.rules_for(log.model) if rule_matches(rule, log)]
    if not matching:
        return None
    return max(
        matching, key=lambda rule: (rule.payout_percent, -KIND_ORDER.index(rule.kind))
    )
