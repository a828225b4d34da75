"""A request's kept bodies, read back for people: the request as sent, and the
answer: its JSON, or for a stream the events as they went by and the
message(s) they make once their deltas are put together (content, reasoning,
tool calls), as OpenAI's non-streamed answer would have carried them.

Bodies are kept only for an account that asks (``BodyRetention``), compressed,
at most ``proxy.call.BODY_KEPT_BYTES`` each: a body cut short is still shown,
as far as it goes, as text when it is no longer JSON.

A body is kept before anyone has checked it (the proxy passes it on as it
came), so it may be JSON nested a thousand levels deep, which Python's own
``json`` cannot read (RecursionError) nor write back: it is read with orjson,
and shown as its text when nested deeper than ``NESTING_MAX``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import orjson
from django.db.models import Exists
from django.utils import timezone

from accounts.models import Account
from proxy.call import BODY_KEPT_BYTES
from proxy.models import BodyRetention, RequestBody, RequestLog

# What a kept body may inflate to: what was kept, and some room. A stored body
# is ours, but a bound costs nothing.
INFLATED_MAX = BODY_KEPT_BYTES + 64 * 1024
# JSON nested deeper is shown as text: writing it back (the API's answer, the
# page's pretty view) recurses once a level, and real requests nest a few.
NESTING_MAX = 100


@dataclass(frozen=True)
class Bodies:
    """``request`` and ``response`` are parsed JSON, or the text when it is
    not JSON (cut short, or an upstream's plain-text error). For a stream,
    ``response`` is the answer its events make and ``events`` their text."""

    request: Any
    response: Any
    events: str | None
    truncated: bool

    def as_dict(self) -> dict:
        return {
            "request": self.request,
            "response": self.response,
            "events": self.events,
            "truncated": self.truncated,
        }


def request_bodies_get(*, account: Account, log: RequestLog) -> Bodies | None:
    """The bodies kept of one of the account's requests; None when none are
    (the account keeps none, kept them no longer than its days, or turned its
    switch off: what it kept is being deleted, and shown no more)."""
    switched_on = BodyRetention.objects.filter(account=account, enabled=True)
    body = RequestBody.objects.filter(
        Exists(switched_on),
        request_id=log.id,
        account=account,
        expires_at__gt=timezone.now(),
    ).first()
    if body is None:
        return None
    return bodies_read(body, streamed=log.streamed)


def bodies_read(body: RequestBody, *, streamed: bool) -> Bodies:
    request = _inflated(body.request)
    response = _inflated(body.response)
    if streamed and _is_events(response):
        return Bodies(
            request=_parsed(request),
            response=stream_assemble(response),
            events=response,
            truncated=body.truncated,
        )
    return Bodies(
        request=_parsed(request),
        response=_parsed(response) if response else None,
        events=None,
        truncated=body.truncated,
    )


def stream_assemble(events: str) -> dict:
    """The chat completion a stream's events make: each choice's deltas put
    together into one message (content, reasoning, refusal, tool calls whose
    arguments arrive in pieces), its finish reason, and the usage reported.
    Events that are not JSON, or not shaped as expected, are passed over."""
    answer: dict[str, Any] = {}
    choices: dict[int, dict] = {}
    for data in _event_data(events):
        if not isinstance(data, dict):
            continue
        for name in ("id", "model", "created", "system_fingerprint"):
            if name in data and name not in answer:
                answer[name] = data[name]
        if isinstance(data.get("usage"), dict):
            answer["usage"] = data["usage"]
        for choice in data.get("choices") or ():
            if isinstance(choice, dict):
                _choice_add(choices, choice)
    answer["object"] = "chat.completion"
    answer["choices"] = [_choice_out(choices[i]) for i in sorted(choices)]
    return answer


def _choice_add(choices: dict[int, dict], choice: dict) -> None:
    index = choice.get("index", 0)
    if not isinstance(index, int):
        index = 0
    into = choices.setdefault(
        index,
        {
            "index": index,
            "role": "assistant",
            "content": [],
            "reasoning": [],
            "refusal": [],
            "tool_calls": {},
            "finish_reason": None,
        },
    )
    if choice.get("finish_reason"):
        into["finish_reason"] = choice["finish_reason"]
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        return
    if isinstance(delta.get("role"), str):
        into["role"] = delta["role"]
    for name, into_name in (
        ("content", "content"),
        ("reasoning_content", "reasoning"),
        ("reasoning", "reasoning"),
        ("refusal", "refusal"),
    ):
        if isinstance(delta.get(name), str):
            into[into_name].append(delta[name])
    for call in delta.get("tool_calls") or ():
        if isinstance(call, dict):
            _tool_call_add(into["tool_calls"], call)


def _tool_call_add(calls: dict[int, dict], call: dict) -> None:
    index = call.get("index", len(calls))
    if not isinstance(index, int):
        index = len(calls)
    into = calls.setdefault(
        index, {"id": None, "type": "function", "name": [], "arguments": []}
    )
    if isinstance(call.get("id"), str):
        into["id"] = call["id"]
    if isinstance(call.get("type"), str):
        into["type"] = call["type"]
    function = call.get("function")
    if isinstance(function, dict):
        if isinstance(function.get("name"), str):
            into["name"].append(function["name"])
        if isinstance(function.get("arguments"), str):
            into["arguments"].append(function["arguments"])


def _choice_out(choice: dict) -> dict:
    message: dict[str, Any] = {
        "role": choice["role"],
        "content": "".join(choice["content"]) if choice["content"] else None,
    }
    if choice["reasoning"]:
        message["reasoning"] = "".join(choice["reasoning"])
    if choice["refusal"]:
        message["refusal"] = "".join(choice["refusal"])
    if choice["tool_calls"]:
        message["tool_calls"] = [
            {
                "id": call["id"],
                "type": call["type"],
                "function": {
                    "name": "".join(call["name"]),
                    "arguments": "".join(call["arguments"]),
                },
            }
            for _, call in sorted(choice["tool_calls"].items())
        ]
    return {
        "index": choice["index"],
        "message": message,
        "finish_reason": choice["finish_reason"],
    }


def _event_data(events: str):
    """The JSON of every event's ``data:`` lines (joined, as SSE joins them)."""
    for event in events.replace("\r\n", "\n").split("\n\n"):
        lines = [
            line[5:].removeprefix(" ")
            for line in event.split("\n")
            if line.startswith("data:")
        ]
        if not lines:
            continue
        payload = "\n".join(lines)
        if payload.strip() == "[DONE]":
            continue
        data = json_or_text(payload)
        if data is not payload:
            yield data


def _is_events(text: str) -> bool:
    start = text.lstrip()[:6]
    return start.startswith(("data:", "id:", "event:", ":"))


def _inflated(packed) -> str:
    if not packed:
        return ""
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(bytes(packed), INFLATED_MAX)
    except zlib.error:
        return ""
    # A body cut short (BODY_KEPT_BYTES) may end inside a character.
    return raw.decode("utf-8", "replace")


def _parsed(text: str) -> Any:
    return json_or_text(text) if text else None


def json_or_text(text: str) -> Any:
    """``text`` read as JSON; the text itself (the very object) when it is not
    JSON, or is nested deeper than NESTING_MAX."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    return value if _nested_within(value, NESTING_MAX) else text


def _nested_within(value: Any, levels: int) -> bool:
    # Without recursion: the value may be nested 1,024 levels deep.
    pending = [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if level > levels:
            return False
        pending.extend((child, level + 1) for child in children)
    return True
