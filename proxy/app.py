"""``/v1``: the OpenAI-compatible API, as a plain ASGI callable placed in front
of Django's ASGI application (everything else goes to Django).

A request reads top to bottom: authenticate → price → hold → forward → meter →
settle → log. No lock is held across the upstream call: the hold is one
statement that commits before the request goes upstream, and the settlement
(which also writes the request log) is committed in a batch per account
(``proxy.settle``) before the client receives the end of its response.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp
import orjson
from django.conf import settings

from apikeys.secrets import PAYG_PREFIX, key_digest, key_is_well_formed
from money import format_usd, usd_plain
from proxy import streaming
from proxy.batching import Ledger
from proxy.caches import TtlCache
from proxy.catalog import Model, catalog_load
from proxy.db import pool_open
from proxy.pricing import (
    Price,
    Usage,
    affordable_output_tokens,
    chat_prompt_bound,
    hold_amount,
    usage_cost,
)
from proxy.tokenizer import count_tokens
from proxy.validation import (
    InvalidRequest,
    chat_request_check,
    embedding_request_check,
)

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 32 * 1024 * 1024
AUTOTOPUP_ASK_SECONDS = 5.0
USAGE_AFTER_FINISH_SECONDS = 2.0
ENDPOINTS = {"/v1/chat/completions": "chat", "/v1/embeddings": "embedding"}
# The largest value of the request log's token counts (PostgreSQL integer) and
# of its costs (bigint): upstream may report anything.
MAX_TOKENS_LOGGED = 2**31 - 1
MAX_NANOS = 2**63 - 1
# Every /v1 answer: a browser never guesses another type than the one sent.
NOSNIFF = (b"x-content-type-options", b"nosniff")
JSON_HEADERS = [(b"content-type", b"application/json"), NOSNIFF]
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
    NOSNIFF,
]


class ApiError(Exception):
    """An OpenAI-shaped error answer."""

    def __init__(self, status: int, message: str, *, type: str, code: str, param=None):
        super().__init__(message)
        self.status = status
        self.type = type
        self.code = code
        self.param = param

    def body(self) -> bytes:
        error = {"message": str(self), "type": self.type, "code": self.code}
        error["param"] = self.param
        return json.dumps({"error": error}).encode()


class BillingUnavailable(ApiError):
    """The request could not be billed, so its answer is not delivered."""

    MESSAGE = "Billing is unavailable right now; the request was not charged"

    def __init__(self):
        super().__init__(
            503, self.MESSAGE, type="server_error", code="billing_unavailable"
        )


def bad_request(message: str, param: str | None = None) -> ApiError:
    return ApiError(
        400, message, type="invalid_request_error", code="invalid_request", param=param
    )


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
    relay: streaming.SseRelay | None = None  # its stream, once one started
    answer_started: bool = False
    answer_ended: bool = False  # the client has had the last byte
    settled: bool = False

    @property
    def charge(self) -> int:
        """What the request is charged: its cost, and never more than its hold.
        Usage reported beyond the hold (an upstream that over-reports) is not
        charged; the log keeps the uncapped cost, flagged, for operators."""
        return min(self.cost, self.held)

    def log_item(self) -> dict:
        return {
            "id": str(self.id),
            "hold": str(self.hold_id) if self.hold_id else None,
            "api_key_id": self.key.key_id,
            "cost": self.charge,
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


class ProxyApp:
    def __init__(self, fallback):
        self.fallback = fallback
        self._ready = asyncio.Lock()
        self.pool = None
        self.http: aiohttp.ClientSession | None = None
        self.keys: TtlCache[KeyInfo | None] = TtlCache(settings.PROXY_KEY_CACHE_SECONDS)
        self.catalog: TtlCache[dict[str, Model]] = TtlCache(
            settings.PROXY_CATALOG_CACHE_SECONDS
        )
        self.ledger: Ledger | None = None
        self._autotopup_asked: dict[int, float] = {}

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            await self.handle(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        else:
            await self.fallback(scope, receive, send)

    async def lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def start(self):
        async with self._ready:
            if self.pool is not None:
                return
            pool = pool_open(
                min_size=settings.PROXY_DB_POOL_MIN, max_size=settings.PROXY_DB_POOL_MAX
            )
            await pool.open()
            self.http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
                auto_decompress=False,
                skip_auto_headers=["User-Agent"],
            )
            self.ledger = Ledger(
                pool,
                lease_want_nanos=settings.PROXY_LEASE_NANOS,
                lease_idle_seconds=settings.PROXY_LEASE_IDLE_SECONDS,
                lease_ttl=timedelta(seconds=settings.PROXY_LEASE_TTL_SECONDS),
                on_autotopup_due=self.autotopup_due,
            )
            self.pool = pool

    def autotopup_due(self, account_id: int) -> None:
        """Ask a Celery worker to top the account up, at most every few seconds
        per account from this worker (the task itself charges at most once)."""
        now = time.monotonic()
        if self._autotopup_asked.get(account_id, 0) > now:
            return
        self._autotopup_asked[account_id] = now + AUTOTOPUP_ASK_SECONDS
        from billing.tasks import autotopup_run

        loop = asyncio.get_running_loop()
        asked = loop.run_in_executor(None, autotopup_run.delay, account_id)
        asked.add_done_callback(
            lambda done: (
                done.exception()
                and logger.error(
                    "auto top-up of %s not queued: %s", account_id, done.exception()
                )
            )
        )

    async def stop(self):
        if self.ledger is not None:
            await self.ledger.close()
        if self.http is not None:
            await self.http.close()
        if self.pool is not None:
            await self.pool.close()

    # --- one request -----------------------------------------------------------

    async def handle(self, scope, receive, send):
        if self.pool is None:
            await self.start()
        try:
            key = await self.authenticate(scope)
            path = scope["path"].rstrip("/")
            if path == "/v1/models" and scope["method"] == "GET":
                await respond(send, 200, await self.models_body())
                return
            endpoint = ENDPOINTS.get(path)
            if endpoint is None:
                raise ApiError(
                    404,
                    f"Unknown endpoint {scope['method']} {scope['path']}",
                    type="invalid_request_error",
                    code="unknown_url",
                )
            if scope["method"] != "POST":
                raise ApiError(
                    405,
                    f"{scope['path']} takes POST",
                    type="invalid_request_error",
                    code="method_not_allowed",
                )
        except ApiError as error:
            await respond(send, error.status, error.body())
            return
        call = Call(key=key, endpoint=endpoint)
        try:
            await self.proxy(call, scope, receive, send)
        except BillingUnavailable as error:
            await respond(send, error.status, error.body())
        except ClientGone:
            pass  # went away before its request was read: nothing to do
        except ApiError as error:
            if not call.settled:
                call.status, call.error = error.status, str(error)
                await self.finish(call)
            await respond(send, error.status, error.body())
        except Exception:
            # A fault of ours. Unless it came after the settlement, the hold is
            # settled now: at the output the client has already received
            # (counted offline), nothing if it received none.
            logger.exception("request %s failed", call.id)
            if not call.settled:
                call.status, call.error = 502, "internal error"
                self.count_delivered(call)
                await self.finish(call)
            if not call.answer_started:
                error = ApiError(
                    502,
                    "The request failed",
                    type="server_error",
                    code="internal_error",
                )
                await respond(send, error.status, error.body())
            elif call.relay is not None and not call.answer_ended:
                await send_stream_end(send, sse_error("The request failed"))

    async def authenticate(self, scope) -> KeyInfo:
        secret = bearer_token(scope)
        if not secret:
            raise ApiError(
                401,
                "Missing API key: send it as 'Authorization: Bearer sk-ap-v1-…'",
                type="authentication_error",
                code="missing_api_key",
            )
        invalid = ApiError(
            401,
            "Invalid API key",
            type="authentication_error",
            code="invalid_api_key",
        )
        if not key_is_well_formed(secret, PAYG_PREFIX):
            raise invalid
        digest = key_digest(secret)
        key = await self.keys.get(digest, lambda: self.key_load(digest))
        if key is None or key.status == "deleted":
            raise invalid
        if key.status == "account_disabled":
            raise ApiError(
                403,
                "The account this API key belongs to is deactivated",
                type="permission_error",
                code="account_disabled",
            )
        if key.status != "enabled":
            raise ApiError(
                403,
                "This API key is disabled",
                type="permission_error",
                code="api_key_disabled",
            )
        return key

    async def key_load(self, digest: str) -> KeyInfo | None:
        # The owner's is_active is read with the key, so a deactivated user's
        # keys are refused within the cache's time to live, like disabled ones.
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT k.id, k.account_id, CASE "
                "WHEN k.deleted_at IS NOT NULL THEN 'deleted' "
                "WHEN NOT u.is_active THEN 'account_disabled' "
                "ELSE k.status END, k.limit_nanos IS NOT NULL "
                "FROM apikeys_apikey k "
                "JOIN accounts_account a ON a.id = k.account_id "
                "JOIN accounts_user u ON u.id = a.owner_id "
                "WHERE k.digest = %s AND k.kind = 'payg'",
                [digest],
            )
            row = await cursor.fetchone()
        return KeyInfo(*row) if row else None

    async def models(self) -> dict[str, Model]:
        return await self.catalog.get("all", lambda: catalog_load(self.pool))

    async def proxy(self, call: Call, scope, receive, send):
        body = await read_body(receive)
        try:
            request = orjson.loads(body)
        except ValueError:
            raise bad_request("The request body is not valid JSON") from None
        if not isinstance(request, dict):
            raise bad_request("The request body must be a JSON object")
        call.request = request

        # Price.
        model_id = request.get("model")
        if not isinstance(model_id, str) or not model_id:
            raise bad_request("'model' is required", "model")
        call.model_id = model_id
        model = (await self.models()).get(model_id)
        if model is None:
            raise ApiError(
                404,
                f"The model '{model_id}' does not exist; GET /v1/models lists them",
                type="invalid_request_error",
                code="model_not_found",
                param="model",
            )
        call.model = model
        if model.kind != call.endpoint:
            raise bad_request(
                f"'{model_id}' is an {model.kind} model, not for {scope['path']}",
                "model",
            )
        price = model.price_at(call.created_at)
        if price is None:
            raise ApiError(
                404,
                f"The model '{model_id}' has no price yet",
                type="invalid_request_error",
                code="model_not_found",
                param="model",
            )
        call.price = price
        stream = request.get("stream", False)
        if not isinstance(stream, bool):
            raise bad_request("'stream' must be true or false", "stream")
        call.streamed = stream
        # The request's shape, before anything is held or forwarded.
        try:
            if call.endpoint == "chat":
                prompt = chat_request_check(request)
            else:
                embedding_request_check(request)
        except InvalidRequest as invalid:
            raise bad_request(str(invalid), invalid.param) from None
        output_allowance = output_tokens_allowed(request, model) * choices_asked(
            request
        )
        upstream_request = dict(request, model=model.upstream_name)
        client_wants_usage = False
        if stream:
            options = request.get("stream_options")
            client_wants_usage = bool(
                isinstance(options, dict) and options.get("include_usage")
            )
            upstream_request["stream_options"] = {
                **(options if isinstance(options, dict) else {}),
                "include_usage": True,
            }
        upstream_body = orjson.dumps(upstream_request)
        # The prompt's bound is counted on the request as parsed (serialized
        # again, as it goes upstream), never on the raw body's spelling.
        if call.endpoint == "chat":
            prompt_bound = chat_prompt_bound(
                request_bytes=len(upstream_body),
                images=prompt.images,
                image_url_bytes=prompt.image_url_bytes,
                files=prompt.files,
                context_length=model.context_length,
            )
        else:
            # Embeddings may carry many inputs, each up to the context length.
            prompt_bound = len(upstream_body)

        # Hold.
        amount = hold_amount(
            prompt_bound=prompt_bound, output_allowance=output_allowance, price=price
        )
        call.held = amount
        await self.hold_place(call, amount, prompt_bound, output_allowance, price)

        # Forward, meter, settle, log.
        client = ClientWatch(receive)
        try:
            await self.forward(
                call, upstream_body, send, client, client_wants_usage, price
            )
        finally:
            client.stop()

    async def hold_place(self, call, amount, prompt_bound, output_allowance, price):
        own_hold = None
        if call.key.limited:
            expires = call.created_at + max(
                settings.HOLD_TTL,
                timedelta(seconds=call.model.provider.read_timeout * 2 + 60),
            )
            own_hold = {
                "hold": str(uuid.uuid4()),
                "api_key": call.key.key_id,
                "amount": amount,
                "expires": expires.isoformat(),
                "reference": str(call.id),
            }
        try:
            held = await self.ledger.admit(
                call.key.account_id, amount, own_hold=own_hold
            )
        except Exception:
            logger.exception("request %s: the hold could not be placed", call.id)
            raise BillingUnavailable from None
        call.hold_id, call.leased = held.hold_id, held.leased_nanos
        refusal, available = held.refusal, held.available_nanos
        if refusal is None:
            return
        affordable = affordable_output_tokens(
            available=available or 0, prompt_bound=prompt_bound, price=price
        )
        if refusal == "key_limit_reached":
            message = (
                f"This API key's credit limit is reached: {format_usd(available, 6)} "
                f"of it is left and this request may cost up to "
                f"{format_usd(amount, 6)}."
            )
        else:
            message = (
                f"Insufficient credits: {format_usd(available or 0, 6)} available, and "
                f"this request may cost up to {format_usd(amount, 6)} "
                f"({prompt_bound} prompt tokens at most, {output_allowance} output "
                f"tokens allowed). Top up, or lower max_tokens."
            )
        if call.endpoint == "chat":
            message += f" The balance affords about {affordable} output tokens."
        raise ApiError(402, message, type="insufficient_credits", code=refusal)

    async def forward(self, call, upstream_body, send, client, wants_usage, price):
        provider = call.model.provider
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if provider.api_key:
            headers["Authorization"] = f"Bearer {provider.api_key}"
        path = "/chat/completions" if call.endpoint == "chat" else "/embeddings"
        url = provider.base_url + path
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=provider.connect_timeout,
            sock_read=provider.read_timeout,
        )
        request = asyncio.ensure_future(
            self.http.post(
                url,
                data=upstream_body,
                headers=headers,
                timeout=timeout,
            )
        )
        # A client that goes away before upstream answers cancels the call.
        client.on_gone(request.cancel)
        try:
            response = await request
        except asyncio.CancelledError:
            if not client.gone:
                raise
            call.status, call.error = 499, "client closed the request"
            await self.finish(call)
            return
        except TimeoutError:
            raise ApiError(
                504,
                "The upstream provider timed out",
                type="upstream_error",
                code="upstream_timeout",
            ) from None
        except aiohttp.ClientError as exc:
            logger.warning("upstream %s unreachable: %s", provider.name, exc)
            raise ApiError(
                502,
                "The upstream provider could not be reached",
                type="upstream_error",
                code="upstream_unreachable",
            ) from None
        async with response:
            streaming_answer = (
                response.status == 200
                and call.streamed
                and response.content_type == "text/event-stream"
            )
            if not streaming_answer:
                # If the client goes away, upstream is closed at once.
                client.on_gone(response.close)
            if response.status != 200:
                await self.upstream_failed(call, response)
            if streaming_answer:
                await self.relay_stream(
                    call, response, send, client, wants_usage, price
                )
            else:
                await self.relay_json(call, response, send, client, price)

    async def upstream_failed(self, call: Call, response: aiohttp.ClientResponse):
        body = await response.read()
        status = response.status
        try:
            message = json.loads(body)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = body[:200].decode(errors="replace")
        logger.info(
            "upstream %s answered %s: %s", call.model.provider.name, status, message
        )
        if status in (400, 404, 409, 413, 422, 429):
            # The request itself was refused: the caller can act on it.
            raise ApiError(
                status,
                f"Upstream: {message}",
                type="invalid_request_error" if status != 429 else "rate_limit_error",
                code="upstream_rejected",
            )
        raise ApiError(
            502,
            f"The upstream provider failed (HTTP {status})",
            type="upstream_error",
            code="upstream_error",
        )

    async def relay_json(self, call, response, send, client, price):
        body = b""
        try:
            body = await response.read()
        except TimeoutError:
            if not client.gone:
                raise ApiError(
                    504,
                    "The upstream provider timed out",
                    type="upstream_error",
                    code="upstream_timeout",
                ) from None
        except aiohttp.ClientError:
            if not client.gone:
                raise ApiError(
                    502,
                    "The upstream provider's answer broke off",
                    type="upstream_error",
                    code="upstream_error",
                ) from None
        if client.gone:
            # Nothing was delivered, so nothing is charged.
            call.status, call.error = 499, "client closed the request"
            await self.finish(call)
            return
        try:
            answer = orjson.loads(body)
        except ValueError:
            raise ApiError(
                502,
                "The upstream provider answered something that is not JSON",
                type="upstream_error",
                code="upstream_error",
            ) from None
        if not isinstance(answer, dict):
            raise ApiError(
                502,
                "The upstream provider answered something that is not an object",
                type="upstream_error",
                code="upstream_error",
            )
        call.usage = usage_from(answer.get("usage")) or self.estimate_json(call, answer)
        call.cost = usage_cost(call.usage, price)
        call.status = 200
        # Commit the charge before the client has the answer.
        if not await self.finish(call):
            raise BillingUnavailable
        call.answer_started = True
        await respond(send, 200, body)
        call.answer_ended = True

    async def relay_stream(self, call, response, send, client, wants_usage, price):
        await send(
            {"type": "http.response.start", "status": 200, "headers": SSE_HEADERS}
        )
        call.answer_started = True
        relay = call.relay = streaming.SseRelay(wants_usage=wants_usage)

        def client_gone():
            # Mid-answer, upstream is closed at once. If the answer was already
            # finished, upstream's usage event follows in a moment: it is read
            # (for a little while) so the bill is exact, not estimated.
            if relay.finished:
                asyncio.get_running_loop().call_later(
                    USAGE_AFTER_FINISH_SECONDS, response.close
                )
            else:
                response.close()

        client.on_gone(client_gone)
        broken = None
        try:
            async for chunk in response.content.iter_any():
                if call.ttft_ms is not None:
                    # Past the first token: what else has arrived by the next
                    # turn of the loop goes out with this (fewer, larger writes).
                    await asyncio.sleep(0)
                    chunk += response.content.read_nowait()
                out = relay.feed(chunk)
                if out:
                    if call.ttft_ms is None and relay.content_seen:
                        call.ttft_ms = int((time.perf_counter() - call.started) * 1000)
                    await send(
                        {"type": "http.response.body", "body": out, "more_body": True}
                    )
                if relay.done:
                    break
        except TimeoutError:
            broken = "the upstream provider timed out mid-stream"
        except aiohttp.ClientError:
            broken = "the upstream provider's stream broke off"
        if client.gone and not (relay.done and relay.usage):
            broken = "client closed the stream"
        elif broken is None and not relay.done:
            broken = "the upstream provider's stream ended early"
        # Upstream's own count when it came (even if the client left after it);
        # else what was delivered, counted offline.
        usage = usage_from(relay.usage)
        if usage is None:
            usage = self.estimate_stream(call, relay)
        call.usage = usage
        call.cost = usage_cost(usage, price)
        call.status = 200 if broken is None else (499 if client.gone else 502)
        call.error = broken or ""
        if not await self.finish(call) and broken is None:
            broken = BillingUnavailable.MESSAGE
        if broken is None:
            tail = b"data: [DONE]\n\n"
        else:
            tail = sse_error(broken, type="upstream_error", code="stream_broken")
        call.answer_ended = True
        await send_stream_end(send, tail)

    def estimate_json(self, call: Call, answer: dict) -> Usage:
        text = ""
        choices = answer.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            message = choice.get("message") if isinstance(choice, dict) else None
            if isinstance(message, dict):
                text += content_text(message.get("content"))
        return Usage(
            prompt_tokens=self.prompt_tokens(call),
            completion_tokens=count_tokens(text, call.model.tokenizer),
            estimated=True,
        )

    def estimate_stream(self, call: Call, relay: streaming.SseRelay) -> Usage:
        """Usage of what was streamed so far, counted offline."""
        return Usage(
            prompt_tokens=self.prompt_tokens(call),
            completion_tokens=count_tokens(
                relay.delivered_text(), call.model.tokenizer
            ),
            estimated=True,
        )

    def count_delivered(self, call: Call) -> None:
        """After a fault of ours: the cost of the output already streamed to
        the client, counted offline, so that it is billed. If even that cannot
        be counted, the request is charged its hold (its admitted worst case)
        rather than nothing."""
        if call.relay is None or call.price is None:
            return  # no output was delivered
        try:
            call.usage = self.estimate_stream(call, call.relay)
            call.cost = usage_cost(call.usage, call.price)
        except Exception:
            logger.exception("request %s: delivered output not counted", call.id)
            call.usage = Usage(estimated=True)
            call.cost = call.held
            call.error = "internal error; output not counted, charged its hold"

    def prompt_tokens(self, call: Call) -> int:
        """The prompt counted offline: the text of every message (or input)."""
        texts = []
        if call.endpoint == "chat":
            for message in call.request.get("messages") or []:
                texts.append(content_text(message.get("content")))
            overhead = 3 + 4 * len(texts)
        else:
            value = call.request.get("input")
            texts = (
                [value]
                if isinstance(value, str)
                else [v for v in value or [] if isinstance(v, str)]
            )
            overhead = 0
        return overhead + sum(count_tokens(t, call.model.tokenizer) for t in texts)

    async def finish(self, call: Call) -> bool:
        """Settle the hold at the call's charge and write its log; returns once
        committed (True), whatever happens to the client meanwhile. False if it
        could not be committed: the answer must then not be delivered. Runs
        once per request (``call.settled``)."""
        call.settled = True
        try:
            await asyncio.shield(
                self.ledger.settle(
                    call.key.account_id, call.log_item(), leased=call.leased
                )
            )
        except Exception:
            logger.exception("request %s could not be settled", call.id)
            return False
        return True

    async def models_body(self) -> bytes:
        data = []
        now = datetime.now(UTC)
        for model in sorted((await self.models()).values(), key=lambda m: m.id):
            price = model.price_at(now)
            if price is None:
                continue
            data.append(
                {
                    "id": model.id,
                    "object": "model",
                    "created": int(model.created.timestamp()),
                    "owned_by": model.provider.name,
                    "type": model.kind,
                    "context_length": model.context_length,
                    "max_output_tokens": model.max_output_tokens,
                    "pricing": {
                        "unit": "USD per 1M tokens",
                        "input": usd_plain(price.input),
                        "cached_input": usd_plain(price.cached_input),
                        "cache_write": usd_plain(price.cache_write),
                        "output": usd_plain(price.output),
                    },
                }
            )
        return json.dumps({"object": "list", "data": data}).encode()


# --- plumbing ------------------------------------------------------------------


class ClientGone(Exception):
    """The client went away."""


class ClientWatch:
    """Notices a client that went away (ASGI ``http.disconnect``) while its
    request is upstream, and closes the upstream response at once."""

    def __init__(self, receive):
        self.gone = False
        self._callbacks = []
        self._task = asyncio.create_task(self._watch(receive))

    async def _watch(self, receive):
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.gone = True
                for callback in self._callbacks:
                    callback()
                return

    def on_gone(self, callback):
        if self.gone:
            callback()
        else:
            self._callbacks.append(callback)

    def stop(self):
        self._task.cancel()


def bearer_token(scope) -> str:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
    return ""


async def read_body(receive) -> bytes:
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(
                413,
                f"The request body is larger than {MAX_BODY_BYTES // 2**20} MB",
                type="invalid_request_error",
                code="request_too_large",
            )
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def sse_error(
    message: str, *, type: str = "server_error", code: str = "internal_error"
) -> bytes:
    """An error as the last event of a stream that has already begun."""
    error = {"message": message, "type": type, "code": code, "param": None}
    return b"data: " + json.dumps({"error": error}).encode() + b"\n\n"


async def send_stream_end(send, tail: bytes) -> None:
    await send({"type": "http.response.body", "body": tail, "more_body": False})


async def respond(send, status: int, body: bytes, headers=JSON_HEADERS):
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def output_tokens_allowed(request: dict, model: Model) -> int:
    """The output allowance of one choice in the hold: what the caller allows
    (the larger, if it sends both limits: a provider may honour either), else
    the model's maximum output."""
    if model.kind != "chat":
        return 0
    allowed = []
    for name in ("max_completion_tokens", "max_tokens"):
        value = request.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise bad_request(f"'{name}' must be a positive integer", name)
        allowed.append(value)
    ceiling = model.max_output_tokens or model.context_length
    return min(max(allowed), ceiling) if allowed else ceiling


MAX_CHOICES = 128


def choices_asked(request: dict) -> int:
    """``n``: each choice may produce the whole output allowance."""
    value = request.get("n", 1)
    if value is None:
        return 1
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= MAX_CHOICES
    ):
        raise bad_request(f"'n' must be an integer from 1 to {MAX_CHOICES}", "n")
    return value


def usage_from(usage) -> Usage | None:
    """OpenAI's usage object as a Usage, or None if there is none."""
    if not isinstance(usage, dict):
        return None
    prompt_details = usage.get("prompt_tokens_details")
    if not isinstance(prompt_details, dict):
        prompt_details = {}
    completion_details = usage.get("completion_tokens_details")
    if not isinstance(completion_details, dict):
        completion_details = {}
    return Usage(
        prompt_tokens=_count(usage.get("prompt_tokens")),
        cached_tokens=_count(prompt_details.get("cached_tokens")),
        cache_write_tokens=_count(
            prompt_details.get("cache_write_tokens")
            or prompt_details.get("cache_creation_tokens")
        ),
        completion_tokens=_count(usage.get("completion_tokens")),
        reasoning_tokens=_count(completion_details.get("reasoning_tokens")),
    )


def _count(value) -> int:
    """A token count as upstream reported it, within what a log row holds."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return min(value, MAX_TOKENS_LOGGED)
    return 0


def clean_text(text: str, limit: int) -> str:
    """Text from a caller or upstream, fit for a log row: no NUL, no lone
    surrogates (neither goes into PostgreSQL's jsonb or text), at most
    ``limit`` characters."""
    text = text[:limit].replace("\x00", "")
    return text.encode("utf-8", "replace").decode("utf-8")


def content_text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text") or ""
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""
