"""One ``/v1`` request as the hot path learns it: its key, model, price, hold,
status and usage. Settled once, it becomes its request log (``log_item``)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from proxy import metering, pricing
from proxy.catalog import Model
from proxy.pricing import Price, Usage
from proxy.streaming import SseRelay

logger = logging.getLogger(__name__)

# The largest cost the request log holds (bigint): upstream may report anything.
MAX_NANOS = 2**63 - 1
# The most of a body kept (before compression) for an account that keeps them.
BODY_KEPT_BYTES = 4 * 1024 * 1024


def request_id(at: datetime) -> uuid.UUID:
    """A UUIDv7 (RFC 9562) of the moment a request arrived: 48 bits of its
    Unix time in milliseconds, then 74 random bits. Request logs are partitioned
    by that moment, and ids made in order sort in order."""
    value = int(at.timestamp() * 1000) << 80 | int.from_bytes(os.urandom(10))
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 9562 variant
    return uuid.UUID(int=value)


@dataclass(frozen=True)
class KeptBodies:
    """A request's body and its answer's, as kept: at most BODY_KEPT_BYTES of
    each, zlib-compressed (``proxy_bodies_keep``)."""

    request: bytes
    response: bytes
    truncated: bool

    @classmethod
    def of(cls, request: bytes, response: bytes) -> KeptBodies:
        """Compresses: call it off the event loop (a body may be megabytes)."""
        return cls(
            zlib.compress(request[:BODY_KEPT_BYTES], 6),
            zlib.compress(response[:BODY_KEPT_BYTES], 6),
            max(len(request), len(response)) > BODY_KEPT_BYTES,
        )


@dataclass(frozen=True)
class KeyInfo:
    key_id: int
    account_id: int
    # "enabled", "disabled", "deleted", or "account_disabled" (its owner is
    # deactivated)
    status: str
    limited: bool  # has a credit limit: its requests hold on their own
    keep_bodies: bool = False  # its account keeps request and response bodies


@dataclass
class Call:
    """What one request has learned so far; becomes its request log."""

    key: KeyInfo
    endpoint: str
    started: float = field(default_factory=time.perf_counter)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: uuid.UUID | None = None  # request_id(created_at) unless given
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
    finish_reason: str = ""
    request: dict = field(default_factory=dict)
    relay: SseRelay | None = None  # its stream, once one began
    # The bodies, for an account that keeps them.
    request_body: bytes | None = None
    response_body: bytes = b""

    def __post_init__(self):
        if self.id is None:
            self.id = request_id(self.created_at)

    def log_item(self) -> dict:
        parts = metering.cost_parts(self.usage, self.price) if self.price else (0, 0, 0)
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
            "finish_reason": clean_text(self.finish_reason, 40),
            # 499: the client went away before the end of its answer.
            "cancelled": self.status == 499,
            "upstream_model": self.model.upstream_name if self.model else "",
            "price_id": self.price.version if self.price else None,
            "max_tokens": pricing.max_tokens_asked(self.request),
            # What each kind of token costs, before any cap (the log keeps
            # the charge by kind: proxy_batch).
            "input_cost_nanos": min(parts[0], MAX_NANOS),
            "cached_cost_nanos": min(parts[1], MAX_NANOS),
            "cache_write_cost_nanos": min(parts[2], MAX_NANOS),
            "created_at": self.created_at.isoformat(),
        }

    def bodies(self) -> tuple[bytes, bytes] | None:
        """The request's body and its answer's (a JSON body, or the stream's
        events), if its account keeps them."""
        if self.request_body is None:
            return None
        response = self.response_body
        if not response and self.relay is not None:
            response = self.relay.transcript()
        return self.request_body, response


def clean_text(text: str, limit: int) -> str:
    """Text from a caller or upstream, fit for a log row: no NUL, no lone
    surrogates (neither goes into PostgreSQL's jsonb or text), at most
    ``limit`` characters."""
    text = text[:limit].replace("\x00", "")
    return text.encode("utf-8", "replace").decode("utf-8")


async def bodies_keep(pool, call: Call) -> None:
    """For an account that keeps them: the request's and its answer's
    bodies, once it is settled and before the end of its answer (so that
    its detail shows them as soon as the client has it). Compressed in a
    thread, written in a statement of its own, never in the settlement's
    batch: a body may be megabytes. A failure here is logged, and the
    answer goes out all the same."""
    try:
        request, response = call.bodies()
        kept = await asyncio.to_thread(KeptBodies.of, request, response)
        async with pool.connection() as conn:
            await conn.execute(
                "SELECT proxy_bodies_keep(%s, %s, %s, %s, %s, %s)",
                [
                    call.key.account_id,
                    call.id,
                    call.created_at,
                    kept.request,
                    kept.response,
                    kept.truncated,
                ],
            )
    except Exception:
        logger.exception("request %s: its bodies could not be kept", call.id)
