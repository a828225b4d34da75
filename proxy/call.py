"""One ``/v1`` request as the hot path learns it: its key, model, price, hold,
status and usage. Settled once, it becomes its request log (``log_item``)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from proxy import metering
from proxy.catalog import Model
from proxy.pricing import Price, Usage
from proxy.streaming import SseRelay

# The largest cost the request log holds (bigint): upstream may report anything.
MAX_NANOS = 2**63 - 1


@dataclass(frozen=True)
class KeyInfo:
    key_id: int
    account_id: int
    # "enabled", "disabled", "deleted", or "account_disabled" (its owner is
    # deactivated)
    status: str
    limited: bool  # has a credit limit: its requests hold on their own


@dataclass
class Call:
    """What one request has learned so far; becomes its request log."""

    key: KeyInfo
    endpoint: str
    started: float = field(default_factory=time.perf_counter)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    model: Model | None = None
    model_id: str = ""
    price: Price | None = None
    hold_id: uuid.UUID | None = None  # its own hold (a key with a credit limit)
    leased: int = 0  # what it took from the worker's lease
    held: int = 0  # its worst case, admitted before forwarding
    streamed: bool = False
    status: int = 0
    error: str = ""
    usage: Usage = field(default_factory=Usage)
    cost: int = 0  # what its usage costs, uncapped
    ttft_ms: int | None = None
    request: dict = field(default_factory=dict)
    relay: SseRelay | None = None  # its stream, once one began

    def log_item(self) -> dict:
        return {
            "id": str(self.id),
            "hold": str(self.hold_id) if self.hold_id else None,
            "api_key_id": self.key.key_id,
            "cost": metering.charge(cost=self.cost, held=self.held),
            "uncapped_cost_nanos": min(self.cost, MAX_NANOS),
            "over_reported": self.cost > self.held,
            "model": clean_text(self.model_id, 100),
            "provider": self.model.provider.name if self.model else "",
            "endpoint": self.endpoint,
            "status": self.status,
            "error": clean_text(self.error, 250),
            "streamed": self.streamed,
            "prompt_tokens": self.usage.prompt_tokens,
            "cached_tokens": self.usage.cached_tokens,
            "cache_write_tokens": self.usage.cache_write_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "reasoning_tokens": self.usage.reasoning_tokens,
            "usage_estimated": self.usage.estimated,
            "latency_ms": int((time.perf_counter() - self.started) * 1000),
            "ttft_ms": self.ttft_ms,
            "created_at": self.created_at.isoformat(),
        }


def clean_text(text: str, limit: int) -> str:
    """Text from a caller or upstream, fit for a log row: no NUL, no lone
    surrogates (neither goes into PostgreSQL's jsonb or text), at most
    ``limit`` characters."""
    text = text[:limit].replace("\x00", "")
    return text.encode("utf-8", "replace").decode("utf-8")
