"""A small OpenAI-compatible upstream for tests and benchmarks.

    python -m tests.upstream.server --port N [--host 127.0.0.1] [--latency-ms 0]
        [--completion-tokens 16] [--chunk-delay-ms 0] [--api-key KEY]

``--port 0`` picks a free port; the first line on stdout is always
``upstream listening on http://HOST:PORT``.

Endpoints: ``POST /v1/chat/completions`` (JSON and SSE), ``POST /v1/embeddings``,
``GET /v1/models``; for tests ``GET|DELETE /_requests`` (the last 100 ``/v1``
requests) and ``GET|DELETE /_stats`` (counters).

Each request can steer the answer with a directive anywhere in the text of the last
message (for embeddings: the first input string)::

    #upstream completion_tokens=5 reasoning_tokens=3 status=429 ...

Keys (all integers but ``finish``): prompt_tokens, completion_tokens (visible
tokens in the content), cached_tokens, cache_write_tokens (reported in
prompt_tokens_details only when given), reasoning_tokens (added to the reported
completion_tokens, as OpenAI does), reported_completion_tokens (an upstream that
over-reports: the usage says this many completion tokens whatever the content
and max_tokens), latency_ms, chunk_delay_ms, status (4xx/5xx), break_after,
hang, finish. An unknown key or a bad value is answered with 400.

The content of N visible tokens is ``"tok" + " tok" * (N - 1)``: exactly N tokens in
o200k_base (and cl100k_base).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import itertools
import json
import re
import signal
import struct
import sys
import time
import zlib
from typing import Any

from aiohttp import web

WORD = "tok"
MODELS = ("gpt-4o-mini", "gpt-4o", "o3-mini", "text-embedding-3-small")
EMBEDDING_DIMENSIONS = 8
REQUEST_LOG_SIZE = 100
STATS_KEYS = (
    "requests",
    "streams_started",
    "streams_completed",
    "streams_aborted_by_client",
    "streams_broken",
    # Not streams: break_after on a JSON answer, and clients that went away
    # before the first byte of the answer (hang=1, latency_ms).
    "responses_broken",
    "aborted_before_first_byte",
)

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_DIRECTIVE = re.compile(r"#upstream((?:[ \t]+[A-Za-z_]+=\S+)*)")
_INT_KEYS = frozenset(
    {
        "prompt_tokens",
        "completion_tokens",
        "cached_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "reported_completion_tokens",
        "latency_ms",
        "chunk_delay_ms",
        "status",
        "break_after",
        "hang",
    }
)
_NO_DIRECTIVE: dict[str, Any] = {}
_JSON = "application/json"
_SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
}
_DONE = b"data: [DONE]\n\n"
_ERROR_KINDS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "unknown_url"),
    429: ("requests", "rate_limit_exceeded"),
}


class DirectiveError(ValueError):
    pass


def parse_directive(text: str) -> dict[str, Any]:
    """The ``#upstream key=value ...`` directive in ``text`` as a dict."""
    if "#upstream" not in text:
        return _NO_DIRECTIVE
    match = _DIRECTIVE.search(text)
    assert match is not None  # the pattern matches a bare "#upstream"
    out: dict[str, Any] = {}
    for pair in match.group(1).split():
        key, _, value = pair.partition("=")
        if key == "finish":
            out[key] = value
        elif key in _INT_KEYS:
            try:
                number = int(value)
            except ValueError:
                raise DirectiveError(
                    f"#upstream directive: {key}={value!r} is not an integer"
                ) from None
            if number < 0:
                raise DirectiveError(f"#upstream directive: {key} must be >= 0")
            out[key] = number
        else:
            raise DirectiveError(f"#upstream directive: unknown key {key!r}")
    status = out.get("status")
    if status is not None and not 400 <= status <= 599:
        raise DirectiveError("#upstream directive: status must be 400..599")
    return out


def text_of(content: Any) -> str:
    """The text of a message content: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def count_words(messages: list[Any]) -> int:
    words = 0
    for message in messages:
        if isinstance(message, dict):
            content = message.get("content")
            if isinstance(content, str):
                words += len(content.split())
            elif content is not None:
                words += len(text_of(content).split())
    return words


_contents: dict[int, str] = {}


def content_of(tokens: int) -> str:
    """``tokens`` words that are exactly ``tokens`` tokens in o200k_base."""
    text = _contents.get(tokens)
    if text is None:
        text = WORD + f" {WORD}" * (tokens - 1) if tokens > 0 else ""
        if len(_contents) < 4096:
            _contents[tokens] = text
    return text


def error_body(status: int, message: str) -> bytes:
    kind, code = _ERROR_KINDS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    return _encode(
        {"error": {"message": message, "type": kind, "param": None, "code": code}}
    ).encode()


def error_response(status: int, message: str) -> web.Response:
    return web.Response(
        status=status, body=error_body(status, message), content_type=_JSON
    )


def embedding_of(text: Any, dimensions: int) -> list[float]:
    seed = zlib.crc32(str(text).encode())
    return [
        round(((seed >> (k % 28)) & 0xF) / 15.0 - 0.5 + k / 1000.0, 6)
        for k in range(dimensions)
    ]


def make_app(
    *,
    latency_ms: int = 0,
    completion_tokens: int = 16,
    chunk_delay_ms: int = 0,
    api_key: str | None = None,
) -> web.Application:
    log: collections.deque[dict[str, Any]] = collections.deque(maxlen=REQUEST_LOG_SIZE)
    stats = dict.fromkeys(STATS_KEYS, 0)
    serial = itertools.count(1)
    expected_auth = f"Bearer {api_key}" if api_key is not None else None
    invalid = object()

    async def begin(request: web.Request) -> tuple[Any, web.Response | None]:
        """Count, record and authenticate a /v1 request; parse its JSON body."""
        stats["requests"] += 1
        raw = await request.read()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = invalid
        log.append(
            {
                "method": request.method,
                "path": request.path,
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": raw.decode("utf-8", "replace") if body is invalid else body,
            }
        )
        if (
            expected_auth is not None
            and request.headers.get("Authorization") != expected_auth
        ):
            return None, error_response(
                401, "Incorrect API key provided. You can find your API key elsewhere."
            )
        if body is invalid:
            return None, error_response(
                400, "We could not parse the JSON body of your request."
            )
        return body, None

    async def wait_before_answer(d: dict[str, Any]) -> web.Response | None:
        """latency_ms, hang and status: all before the first byte."""
        latency = d.get("latency_ms", latency_ms)
        try:
            if d.get("hang"):
                await asyncio.get_running_loop().create_future()
            if latency:
                await asyncio.sleep(latency / 1000)
        except asyncio.CancelledError:
            stats["aborted_before_first_byte"] += 1
            raise
        status = d.get("status")
        if status:
            return error_response(status, f"upstream directive status={status}")
        return None

    async def broken_json(request: web.Request, payload: bytes) -> web.StreamResponse:
        """Headers and half the body, then the connection is closed."""
        resp = web.StreamResponse(headers={"Content-Type": _JSON})
        resp.content_length = len(payload)
        await resp.prepare(request)
        await resp.write(payload[: len(payload) // 2])
        stats["responses_broken"] += 1
        assert request.transport is not None
        request.transport.close()
        return resp

    async def chat_completions(request: web.Request) -> web.StreamResponse:
        body, failure = await begin(request)
        if failure is not None:
            return failure
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not messages:
            return error_response(400, "'messages' is a required property")
        model = body.get("model")
        if not isinstance(model, str):
            return error_response(400, "'model' is a required property")
        last = messages[-1]
        try:
            d = parse_directive(
                text_of(last.get("content")) if isinstance(last, dict) else ""
            )
        except DirectiveError as exc:
            return error_response(400, str(exc))
        if d or latency_ms:
            failure = await wait_before_answer(d)
            if failure is not None:
                return failure

        prompt = d.get("prompt_tokens")
        if prompt is None:
            prompt = count_words(messages) + 4
        reasoning = d.get("reasoning_tokens", 0)
        finish = d.get("finish", "stop")
        visible = d.get("completion_tokens")
        if visible is None:
            # A real model stops at max_(completion_)tokens; an explicit
            # completion_tokens in the directive wins, to allow misbehaviour.
            visible = completion_tokens
            cap = body.get("max_completion_tokens") or body.get("max_tokens")
            if isinstance(cap, int) and cap > 0 and visible + reasoning > cap:
                reasoning = min(reasoning, cap)
                visible = cap - reasoning
                finish = "length"
        completion = d.get("reported_completion_tokens", visible + reasoning)
        prompt_details = {"cached_tokens": d.get("cached_tokens", 0), "audio_tokens": 0}
        if "cache_write_tokens" in d:
            prompt_details["cache_write_tokens"] = d["cache_write_tokens"]
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": prompt_details,
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        completion_id = f"chatcmpl-upstream{next(serial):08d}"
        created = int(time.time())

        if body.get("stream"):
            options = body.get("stream_options")
            return await stream(
                request,
                completion_id=completion_id,
                created=created,
                model=model,
                visible=visible,
                finish=finish,
                usage=usage,
                include_usage=isinstance(options, dict)
                and bool(options.get("include_usage")),
                delay_ms=d.get("chunk_delay_ms", chunk_delay_ms),
                break_after=d.get("break_after"),
            )

        payload = _encode(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": content_of(visible),
                            "refusal": None,
                            "annotations": [],
                        },
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                ],
                "usage": usage,
                "service_tier": "default",
                "system_fingerprint": "fp_upstream",
            }
        ).encode()
        if "break_after" in d:
            return await broken_json(request, payload)
        return web.Response(body=payload, content_type=_JSON)

    async def stream(
        request: web.Request,
        *,
        completion_id: str,
        created: int,
        model: str,
        visible: int,
        finish: str,
        usage: dict[str, Any],
        include_usage: bool,
        delay_ms: int,
        break_after: int | None,
    ) -> web.StreamResponse:
        choice: dict[str, Any] = {
            "index": 0,
            "delta": {"role": "assistant", "content": "", "refusal": None},
            "logprobs": None,
            "finish_reason": None,
        }
        chunk: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "service_tier": "default",
            "system_fingerprint": "fp_upstream",
            "choices": [choice],
        }
        if include_usage:
            chunk["usage"] = None

        def event() -> bytes:
            return b"data: " + _encode(chunk).encode() + b"\n\n"

        role_event = event()
        choice["delta"] = {"content": WORD}
        first_event = event()
        choice["delta"] = {"content": " " + WORD}
        next_event = event()
        choice["delta"] = {}
        choice["finish_reason"] = finish
        finish_event = event()
        usage_event = b""
        if include_usage:
            chunk["choices"] = []
            chunk["usage"] = usage
            usage_event = event()

        delay = delay_ms / 1000
        sent = visible if break_after is None else min(visible, break_after)
        resp = web.StreamResponse(headers=_SSE_HEADERS)
        started = False
        try:
            await resp.prepare(request)
            started = True
            stats["streams_started"] += 1
            await resp.write(role_event)
            for i in range(sent):
                if i and delay:
                    await asyncio.sleep(delay)
                await resp.write(next_event if i else first_event)
            if break_after is not None:
                stats["streams_broken"] += 1
                assert request.transport is not None
                request.transport.close()
                return resp
            await resp.write(finish_event)
            if usage_event:
                await resp.write(usage_event)
            await resp.write(_DONE)
            await resp.write_eof()
        except asyncio.CancelledError:
            _count_abort(started)
            raise
        except ConnectionError:
            _count_abort(started)
            return resp
        stats["streams_completed"] += 1
        return resp

    def _count_abort(started: bool) -> None:
        key = "streams_aborted_by_client" if started else "aborted_before_first_byte"
        stats[key] += 1

    async def embeddings(request: web.Request) -> web.StreamResponse:
        body, failure = await begin(request)
        if failure is not None:
            return failure
        inputs = body.get("input") if isinstance(body, dict) else None
        if isinstance(inputs, str):
            inputs = [inputs]
        elif (
            isinstance(inputs, list) and inputs and isinstance(inputs[0], int)
        ):  # one input given as token ids
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs:
            return error_response(400, "'input' is a required property")
        model = body.get("model")
        if not isinstance(model, str):
            return error_response(400, "'model' is a required property")
        first = inputs[0]
        try:
            d = parse_directive(first if isinstance(first, str) else "")
        except DirectiveError as exc:
            return error_response(400, str(exc))
        if d or latency_ms:
            failure = await wait_before_answer(d)
            if failure is not None:
                return failure
        prompt = d.get("prompt_tokens")
        if prompt is None:
            prompt = sum(
                len(item.split()) if isinstance(item, str) else len(item)
                for item in inputs
            )
        dimensions = body.get("dimensions")
        if not isinstance(dimensions, int) or dimensions <= 0:
            dimensions = EMBEDDING_DIMENSIONS
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, item in enumerate(inputs):
            vector: Any = embedding_of(item, dimensions)
            if as_base64:
                vector = base64.b64encode(
                    struct.pack(f"<{dimensions}f", *vector)
                ).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        payload = _encode(
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
            }
        ).encode()
        if "break_after" in d:
            return await broken_json(request, payload)
        return web.Response(body=payload, content_type=_JSON)

    models_payload = _encode(
        {
            "object": "list",
            "data": [
                {
                    "id": m,
                    "object": "model",
                    "created": 1700000000,
                    "owned_by": "system",
                }
                for m in MODELS
            ],
        }
    ).encode()

    async def models(request: web.Request) -> web.Response:
        _, failure = await begin(request)
        if failure is not None:
            return failure
        return web.Response(body=models_payload, content_type=_JSON)

    async def model(request: web.Request) -> web.Response:
        _, failure = await begin(request)
        if failure is not None:
            return failure
        return web.json_response(
            {
                "id": request.match_info["name"],
                "object": "model",
                "created": 1700000000,
                "owned_by": "system",
            }
        )

    async def not_found(request: web.Request) -> web.Response:
        _, failure = await begin(request)
        if failure is not None:
            return failure
        return error_response(404, f"Invalid URL ({request.method} {request.path})")

    async def get_requests(request: web.Request) -> web.Response:
        return web.json_response(list(log))

    async def clear_requests(request: web.Request) -> web.Response:
        log.clear()
        return web.json_response([])

    async def get_stats(request: web.Request) -> web.Response:
        return web.json_response(stats)

    async def reset_stats(request: web.Request) -> web.Response:
        for key in stats:
            stats[key] = 0
        return web.json_response(stats)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.add_routes(
        [
            web.post("/v1/chat/completions", chat_completions),
            web.post("/v1/embeddings", embeddings),
            web.get("/v1/models", models, allow_head=False),
            web.get("/v1/models/{name}", model, allow_head=False),
            web.route("*", "/v1/{tail:.*}", not_found),
            web.get("/_requests", get_requests, allow_head=False),
            web.delete("/_requests", clear_requests),
            web.get("/_stats", get_stats, allow_head=False),
            web.delete("/_stats", reset_stats),
        ]
    )
    return app


async def serve(args: argparse.Namespace) -> None:
    app = make_app(
        latency_ms=args.latency_ms,
        completion_tokens=args.completion_tokens,
        chunk_delay_ms=args.chunk_delay_ms,
        api_key=args.api_key,
    )
    # handler_cancellation: a handler is cancelled as soon as its client goes
    # away, so aborted streams are counted at once, even between slow chunks.
    runner = web.AppRunner(
        app, access_log=None, handler_cancellation=True, shutdown_timeout=0.1
    )
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, backlog=1024)
    await site.start()
    host, port = runner.addresses[0][:2]
    print(f"upstream listening on http://{host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.upstream.server", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="0: any free port")
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--completion-tokens", type=int, default=16)
    parser.add_argument("--chunk-delay-ms", type=int, default=0)
    parser.add_argument("--api-key", default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
