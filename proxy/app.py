"""``/v1``: the OpenAI-compatible API, as a plain ASGI callable placed in front
of Django's ASGI application (everything else goes to Django).

A request reads top to bottom in ``ProxyApp.handle``: authenticate → price →
admit (hold) → forward → meter → settle → log. No lock is held across the
upstream call: the hold is one statement that commits before the request goes
upstream. The settlement (which also writes the request log) happens in one
place, at the end of ``handle``, once the request's status, usage and cost are
final; it is committed in a batch per account (``proxy.batching``) before the
client receives the end of its answer (``Ending``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
import orjson
from django.conf import settings

from apikeys.secrets import PAYG_PREFIX, key_digest, key_is_well_formed
from proxy import metering
from proxy.asgi_io import (
    NOTHING,
    ClientWatch,
    Ending,
    bearer_token,
    read_body,
    respond,
    stream_start,
)
from proxy.call import Call, KeyInfo, bodies_keep, request_id
from proxy.catalog import Model, catalog_read, models_answer
from proxy.errors import (
    ApiError,
    BillingUnavailable,
    ClientGone,
    InvalidRequest,
    account_disabled,
    api_key_disabled,
    bad_request,
    internal_error,
    invalid_api_key,
    method_not_allowed,
    missing_api_key,
    model_not_found,
    not_admitted,
    sse_error,
    unknown_url,
    upstream_error,
    upstream_timeout,
)
from proxy.pricing import (
    affordable_output_tokens,
    chat_prompt_bound,
    hold_amount,
    output_allowance,
)
from proxy.streaming import SseRelay
from proxy.validation import chat_request_check, embedding_request_check
from proxy.worker import ProxyWorker

logger = logging.getLogger(__name__)

USAGE_AFTER_FINISH_SECONDS = 2.0
ENDPOINTS = {"/v1/chat/completions": "chat", "/v1/embeddings": "embedding"}
DONE = b"data: [DONE]\n\n"


class ProxyApp(ProxyWorker):
    def __init__(self, fallback):
        super().__init__()
        self.fallback = fallback

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            await self.handle(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        else:
            await self.fallback(scope, receive, send)

    # --- one request -----------------------------------------------------------

    async def handle(self, scope, receive, send):
        if self.pool is None:
            await self.start()
        created_at = datetime.now(UTC)
        call_id = request_id(created_at)
        rid = str(call_id).encode()  # X-Request-Id of every answer
        try:
            key = await self.authenticate(scope)
            endpoint = self.route(scope)
            if endpoint == "models":
                body = models_answer(await self.models(), datetime.now(UTC))
                await respond(send, 200, body, rid)
                return
        except ApiError as error:
            await respond(send, error.status, error.body(), rid)
            return

        call = Call(key=key, endpoint=endpoint, id=call_id, created_at=created_at)
        try:
            ending = await self.proxy(call, scope, receive, send)
        except ClientGone:
            return  # it left before its request was read: nothing to settle
        except BillingUnavailable as error:
            # No hold could be placed: nothing to settle.
            await respond(send, error.status, error.body(), rid)
            return
        except ApiError as error:
            call.status, call.error = error.status, str(error)
            ending = Ending.error(error)
        except Exception:
            # A fault of ours: the output the client already received is
            # billed (counted offline), nothing if it received none.
            logger.exception("request %s failed", call.id)
            call.status, call.error = 502, "internal error"
            metering.meter_delivered(call)
            if call.relay is not None:
                ending = Ending(0, sse_error("The request failed"))
            else:
                ending = Ending.error(internal_error())

        # Settle: the request's one settlement, now that its status, usage and
        # cost are final, and before the client has the end of its answer.
        # (A task cancelled meanwhile, the server stopping, is not settled: its
        # hold expires and the sweep releases it.)
        settled = await self.settle(call)
        if not settled and ending.billed:
            ending = ending.unbilled()
        if settled and call.request_body is not None:
            await bodies_keep(self.pool, call)
        try:
            await ending.send(send, rid)
        except Exception:
            logger.exception("request %s: the end of its answer not sent", call.id)

    def route(self, scope) -> str:
        path = scope["path"].rstrip("/")
        if path == "/v1/models" and scope["method"] == "GET":
            return "models"
        endpoint = ENDPOINTS.get(path)
        if endpoint is None:
            raise unknown_url(scope["method"], scope["path"])
        if scope["method"] != "POST":
            raise method_not_allowed(scope["path"])
        return endpoint

    async def authenticate(self, scope) -> KeyInfo:
        secret = bearer_token(scope)
        if not secret:
            raise missing_api_key()
        if not key_is_well_formed(secret, PAYG_PREFIX):
            raise invalid_api_key()
        digest = key_digest(secret)
        key = await self.keys.get(digest, lambda: self.key_read(digest))
        if key is None or key.status == "deleted":
            raise invalid_api_key()
        if key.status == "account_disabled":
            raise account_disabled()
        if key.status != "enabled":
            raise api_key_disabled()
        return key

    async def key_read(self, digest: str) -> KeyInfo | None:
        # The owner's is_active is read with the key, so a deactivated user's
        # keys are refused within the cache's time to live, like disabled ones.
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT k.id, k.account_id, CASE "
                "WHEN k.deleted_at IS NOT NULL THEN 'deleted' "
                "WHEN NOT u.is_active THEN 'account_disabled' "
                "ELSE k.status END, k.limit_nanos IS NOT NULL, "
                "coalesce(br.enabled, false) "
                "FROM apikeys_apikey k "
                "JOIN accounts_account a ON a.id = k.account_id "
                "JOIN accounts_user u ON u.id = a.owner_id "
                "LEFT JOIN proxy_bodyretention br ON br.account_id = k.account_id "
                "WHERE k.digest = %s AND k.kind = 'payg'",
                [digest],
            )
            row = await cursor.fetchone()
        return KeyInfo(*row) if row else None

    async def models(self) -> dict[str, Model]:
        return await self.catalog.get("all", lambda: catalog_read(self.pool))

    async def proxy(self, call: Call, scope, receive, send) -> Ending:
        """Everything between authentication and the settlement; answers what
        is left to send once the request is settled."""
        body = await read_body(receive)
        try:
            request = orjson.loads(body)
        except ValueError:
            raise bad_request("The request body is not valid JSON") from None
        if not isinstance(request, dict):
            raise bad_request("The request body must be a JSON object")
        call.request = request
        if call.key.keep_bodies:
            call.request_body = body

        # Price.
        model_id = request.get("model")
        if not isinstance(model_id, str) or not model_id:
            raise bad_request("'model' is required", "model")
        call.model_id = model_id
        model = (await self.models()).get(model_id)
        if model is None:
            raise model_not_found(
                f"The model '{model_id}' does not exist; GET /v1/models lists them"
            )
        call.model = model
        if model.kind != call.endpoint:
            raise bad_request(
                f"'{model_id}' is an {model.kind} model, not for {scope['path']}",
                "model",
            )
        price = model.price_at(call.created_at)
        if price is None:
            raise model_not_found(f"The model '{model_id}' has no price yet")
        call.price = price
        stream = request.get("stream")
        if stream is None:
            stream = False  # OpenAI's default, also when sent as null
        if not isinstance(stream, bool):
            raise bad_request("'stream' must be true or false", "stream")
        call.streamed = stream
        # The request's shape, before anything is held or forwarded.
        try:
            if call.endpoint == "chat":
                prompt = chat_request_check(request)
            else:
                embedding_request_check(request)
            allowance = output_allowance(request, model)
        except InvalidRequest as invalid:
            raise bad_request(str(invalid), invalid.param) from None
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
                image_tokens_max=model.image_tokens_max,
                files=prompt.files,
                context_length=model.context_length,
            )
        else:
            # Embeddings may carry many inputs, each up to the context length.
            prompt_bound = len(upstream_body)

        # Hold.
        await self.admit(call, prompt_bound, allowance)

        # Forward and meter (the settlement follows in ``handle``).
        client = ClientWatch(receive)
        try:
            return await self.forward(
                call, upstream_body, send, client, client_wants_usage
            )
        finally:
            client.stop()

    async def admit(self, call: Call, prompt_bound: int, output_allowance: int):
        """Hold the request's worst case (from the worker's lease, or a hold of
        its own for a key with a credit limit), or refuse it with a 402."""
        price = call.price
        amount = hold_amount(
            prompt_bound=prompt_bound, output_allowance=output_allowance, price=price
        )
        call.held = amount
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
        if held.refusal is None:
            return
        available = held.available_nanos
        affordable = None
        if call.endpoint == "chat":
            affordable = affordable_output_tokens(
                available=available or 0, prompt_bound=prompt_bound, price=price
            )
        raise not_admitted(
            held.refusal,
            available=available,
            amount=amount,
            prompt_bound=prompt_bound,
            output_allowance=output_allowance,
            affordable=affordable,
        )

    async def forward(self, call, upstream_body, send, client, wants_usage) -> Ending:
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
            return NOTHING
        except TimeoutError:
            raise upstream_timeout() from None
        except aiohttp.ClientError as exc:
            logger.warning("upstream %s unreachable: %s", provider.name, exc)
            raise upstream_error(
                "The upstream provider could not be reached",
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
                return await self.relay_stream(
                    call, response, send, client, wants_usage
                )
            return await self.relay_json(call, response, client)

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
        raise upstream_error(f"The upstream provider failed (HTTP {status})")

    async def relay_json(self, call, response, client) -> Ending:
        """Read the whole answer and meter it; it is sent once settled."""
        body = b""
        try:
            body = await response.read()
        except TimeoutError:
            if not client.gone:
                raise upstream_timeout() from None
        except aiohttp.ClientError:
            if not client.gone:
                raise upstream_error(
                    "The upstream provider's answer broke off"
                ) from None
        if client.gone:
            # Nothing was delivered, so nothing is charged.
            call.status, call.error = 499, "client closed the request"
            return NOTHING
        try:
            answer = orjson.loads(body)
        except ValueError:
            raise upstream_error(
                "The upstream provider answered something that is not JSON"
            ) from None
        if not isinstance(answer, dict):
            raise upstream_error(
                "The upstream provider answered something that is not an object"
            )
        metering.meter(call, answer.get("usage"), metering.answer_messages(answer))
        call.finish_reason = metering.finish_reason(answer)
        if call.request_body is not None:
            call.response_body = body
        call.status = 200
        return Ending(200, body, billed=True)

    async def relay_stream(self, call, response, send, client, wants_usage) -> Ending:
        """Pass the stream through as it comes, and meter it; its last event
        (``[DONE]``, or an error) is sent once settled."""
        await stream_start(send, str(call.id).encode())
        relay = call.relay = SseRelay(
            wants_usage=wants_usage, event_id=str(call.id).encode()
        )

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
        metering.meter(call, relay.usage, relay.delivered())
        call.finish_reason = relay.finish_reason
        call.status = 200 if broken is None else (499 if client.gone else 502)
        call.error = broken or ""
        if broken is None:
            return Ending(0, DONE, billed=True)
        return Ending(0, sse_error(broken, type="upstream_error", code="stream_broken"))

    async def settle(self, call: Call) -> bool:
        """Settle the hold at the call's charge and write its log; returns once
        committed (True), whatever happens to the client meanwhile. False if it
        could not be committed: a successful answer must then not be delivered.
        """
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
