"""The ASGI plumbing of ``/v1``: reading a request (its key, its body),
noticing a client that went away, and sending answers, the last of which
(``Ending``) waits for the settlement."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from proxy.errors import ApiError, BillingUnavailable, ClientGone, sse_error

MAX_BODY_BYTES = 32 * 1024 * 1024
# Every /v1 answer: a browser never guesses another type than the one sent.
NOSNIFF = (b"x-content-type-options", b"nosniff")
JSON_HEADERS = [(b"content-type", b"application/json"), NOSNIFF]
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
    NOSNIFF,
]


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


# Every answer carries its request's id (``X-Request-Id``): the id of its log,
# which a customer quotes to support.


async def respond(send, status: int, body: bytes, request_id: bytes):
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                *JSON_HEADERS,
                (b"x-request-id", request_id),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def stream_start(send, request_id: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [*SSE_HEADERS, (b"x-request-id", request_id)],
        }
    )


async def stream_end(send, tail: bytes) -> None:
    await send({"type": "http.response.body", "body": tail, "more_body": False})


@dataclass(frozen=True)
class Ending:
    """What the client still has to get once the request is settled: a whole
    JSON answer (``status``), or the last event of a stream that began
    (``status`` 0), or nothing (``body`` empty: the client left).

    ``billed``: a successful answer, which reaches the client only if its
    settlement committed (else ``unbilled`` goes instead): every answer received
    whole is billed."""

    status: int
    body: bytes
    billed: bool = False

    @classmethod
    def error(cls, error: ApiError) -> Ending:
        return cls(error.status, error.body())

    def unbilled(self) -> Ending:
        if self.status:
            return Ending.error(BillingUnavailable())
        return Ending(
            0,
            sse_error(
                BillingUnavailable.MESSAGE, type="upstream_error", code="stream_broken"
            ),
        )

    async def send(self, send, request_id: bytes) -> None:
        if not self.body:
            return
        if self.status:
            await respond(send, self.status, self.body, request_id)
        else:
            await stream_end(send, self.body)


NOTHING = Ending(0, b"")
