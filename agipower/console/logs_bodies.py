"""A request's kept bodies as the Logs detail page shows them: the
conversation readable (each message's role, text and tool calls, then the
answer's), and the request's and the answer's JSON, pretty and raw.

``proxy.bodies`` reads the bodies back (and puts a stream's events together
into the answer they make); this only shapes them for people. Nothing here
is trusted as markup: the template escapes every string.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from proxy.bodies import Bodies, json_or_text

# A JSON view longer than this is shown in part (a kept body may be 4 MB); the
# whole of it is in GET /api/v1/requests/{id}.
SHOWN_CHARS = 256 * 1024
# A data: URL (an image sent inline) is named, not shown.
URL_CHARS = 120

ROLES = {
    "system": "System",
    "developer": "Developer",
    "user": "User",
    "assistant": "Assistant",
    "tool": "Tool",
    "function": "Function",
}


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: str
    id: str = ""


@dataclass(frozen=True)
class Message:
    role: str
    label: str
    text: str = ""
    reasoning: str = ""
    refusal: str = ""
    attachments: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str = ""
    answer: bool = False  # from the response, not the request
    finish_reason: str = ""


@dataclass(frozen=True)
class JsonView:
    title: str
    pretty: str
    raw: str
    cut: bool


@dataclass(frozen=True)
class BodiesView:
    messages: list[Message]
    views: list[JsonView]
    truncated: bool


def bodies_view(bodies: Bodies) -> BodiesView:
    return BodiesView(
        messages=conversation(bodies),
        views=[
            _json_view("Request", bodies.request, raw=None),
            _json_view(
                "Response (stream events put together)"
                if bodies.events
                else "Response",
                bodies.response,
                raw=bodies.events,
            ),
        ],
        truncated=bodies.truncated,
    )


def conversation(bodies: Bodies) -> list[Message]:
    """The request's messages (or an embedding's inputs), then each choice of
    the answer."""
    messages: list[Message] = []
    request = bodies.request
    if isinstance(request, dict):
        if isinstance(request.get("messages"), list):
            messages += [
                _message(item) for item in request["messages"] if isinstance(item, dict)
            ]
        elif "input" in request:
            inputs = request["input"]
            for item in inputs if isinstance(inputs, list) else [inputs]:
                messages.append(Message(role="input", label="Input", text=_text(item)))
    response = bodies.response
    if isinstance(response, dict) and isinstance(response.get("choices"), list):
        for choice in response["choices"]:
            if not isinstance(choice, dict) or not isinstance(
                choice.get("message"), dict
            ):
                continue
            messages.append(
                _message(
                    choice["message"],
                    answer=True,
                    finish_reason=str(choice.get("finish_reason") or ""),
                )
            )
    return messages


def _message(item: dict, *, answer: bool = False, finish_reason: str = "") -> Message:
    role = str(item.get("role") or ("assistant" if answer else "user"))
    text, attachments = _content(item.get("content"))
    calls = [
        _tool_call(call)
        for call in item.get("tool_calls") or ()
        if isinstance(call, dict)
    ]
    if isinstance(item.get("function_call"), dict):
        calls.append(_tool_call({"function": item["function_call"]}))
    return Message(
        role=role,
        label=ROLES.get(role, role.capitalize()),
        text=text,
        reasoning=_text(item.get("reasoning") or item.get("reasoning_content") or ""),
        refusal=_text(item.get("refusal") or ""),
        attachments=attachments,
        tool_calls=calls,
        tool_call_id=str(item.get("tool_call_id") or ""),
        answer=answer,
        finish_reason=finish_reason,
    )


def _content(content: Any) -> tuple[str, list[str]]:
    """A message's text, and what else it carried (images, audio, files)."""
    if content is None:
        return "", []
    if not isinstance(content, list):
        return _text(content), []
    texts, attachments = [], []
    for part in content:
        if not isinstance(part, dict):
            texts.append(_text(part))
            continue
        kind = part.get("type")
        if kind == "text" or (kind is None and "text" in part):
            texts.append(_text(part.get("text", "")))
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            attachments.append(f"Image: {_url(url)}")
        elif kind == "input_audio":
            attachments.append("Audio")
        elif kind == "file":
            attachments.append("File")
        else:
            attachments.append(str(kind or "Part"))
    return "\n\n".join(text for text in texts if text), attachments


def _tool_call(call: dict) -> ToolCall:
    function = call.get("function") if isinstance(call.get("function"), dict) else {}
    arguments = function.get("arguments", "")
    if isinstance(arguments, str):
        # Arguments cut short, or not JSON, are shown as they came.
        parsed = json_or_text(arguments)
        if parsed is not arguments:
            arguments = json.dumps(parsed, indent=2, ensure_ascii=False)
    else:
        arguments = json.dumps(arguments, indent=2, ensure_ascii=False)
    return ToolCall(
        name=str(function.get("name") or call.get("type") or "tool"),
        arguments=arguments,
        id=str(call.get("id") or ""),
    )


def _url(url: Any) -> str:
    url = str(url or "")
    if url.startswith("data:"):
        kind = url[5:].split(";", 1)[0].split(",", 1)[0] or "data"
        return f"inline {kind}, {len(url):,} characters"
    return url if len(url) <= URL_CHARS else url[: URL_CHARS - 1] + "…"


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False)


def _json_view(title: str, value: Any, *, raw: str | None) -> JsonView:
    if value is None:
        pretty = compact = ""
    elif isinstance(value, str):  # not JSON: cut short, or plain text
        pretty = compact = value
    else:
        pretty = json.dumps(value, indent=2, ensure_ascii=False)
        compact = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    raw = compact if raw is None else raw
    cut = len(pretty) > SHOWN_CHARS or len(raw) > SHOWN_CHARS
    return JsonView(
        title=title, pretty=pretty[:SHOWN_CHARS], raw=raw[:SHOWN_CHARS], cut=cut
    )
