"""Server-sent events from upstream, passed through as they come.

The relay looks inside events only as much as billing needs: it keeps the
usage event (and drops it if the client did not ask for usage: upstream is
always asked for it), holds back the final ``[DONE]`` until the request is
settled, and keeps what was delivered so that output can be counted offline
when the stream ends early.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

DONE = b"data: [DONE]"
_FINISHED = re.compile(rb'"finish_reason"\s*:\s*"([^"\\]{0,40})')


class SseRelay:
    def __init__(self, *, wants_usage: bool, event_id: bytes = b""):
        self.wants_usage = wants_usage
        # The first event carries the request's id (``id:``), as OpenAI's do.
        self._id_line = b"id: " + event_id + b"\n" if event_id else b""
        self.done = False
        self.usage: dict | None = None
        self.content_seen = False
        self.finished = False  # a choice reported its finish_reason
        self.finish_reason = ""
        self._buffer = b""
        self._delivered: list[bytes] = []

    def feed(self, chunk: bytes) -> bytes:
        """Take bytes from upstream; answer the bytes to send to the client."""
        if (
            not self._buffer
            and chunk.endswith(b"\n\n")
            and b'"usage":{' not in chunk
            and b'"usage": {' not in chunk
            and b"[DONE]" not in chunk
            and b"\r" not in chunk
        ):
            # Whole events, none of them for billing: passed through as they are.
            self._delivered.append(chunk)
            if not self.finished:
                self._finish_seen(chunk)
            if not self.content_seen and b'"content"' in chunk:
                self.content_seen = True
            return self._first(chunk)
        data = self._buffer + chunk
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        events = data.split(b"\n\n")
        self._buffer = events.pop()
        out = []
        for event in events:
            if not event.strip() or self.done:
                continue
            if event.startswith(DONE):
                self.done = True
                continue
            if b'"usage":{' in event or b'"usage": {' in event:
                parsed = _data(event)
                if isinstance(parsed.get("usage"), dict):
                    self.usage = parsed["usage"]
                if not parsed.get("choices") and not self.wants_usage:
                    continue
            else:
                self._delivered.append(event + b"\n\n")
                if not self.finished:
                    self._finish_seen(event)
                if not self.content_seen and b'"content"' in event:
                    self.content_seen = True
            out.append(event)
            out.append(b"\n\n")
        return self._first(b"".join(out))

    def _first(self, out: bytes) -> bytes:
        if out and self._id_line:
            out, self._id_line = self._id_line + out, b""
        return out

    def _finish_seen(self, events: bytes) -> None:
        found = _FINISHED.search(events)
        if found:
            self.finished = True
            self.finish_reason = found.group(1).decode("utf-8", "replace")

    def transcript(self) -> bytes:
        """The events delivered, and upstream's usage: the stream as kept
        for an account that keeps its bodies."""
        usage = b""
        if self.usage is not None:
            usage = b'data: {"usage": ' + json.dumps(self.usage).encode() + b"}\n\n"
        return b"".join(self._delivered) + usage

    def delivered(self) -> Iterator[dict]:
        """The delta of every choice delivered so far, for counting offline
        (``proxy.metering.output_text``)."""
        events = (e for block in self._delivered for e in block.split(b"\n\n") if e)
        # Upstream's events may have any shape: nothing here may fail.
        for event in events:
            choices = _data(event).get("choices")
            for choice in choices if isinstance(choices, list) else ():
                delta = choice.get("delta") if isinstance(choice, dict) else None
                if isinstance(delta, dict):
                    yield delta


def _data(event: bytes) -> dict:
    payload = b"".join(
        line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:")
    )
    try:
        parsed = json.loads(payload)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
