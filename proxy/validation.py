"""The shape of a ``/v1`` request, checked before anything is held or forwarded.

A request that the proxy would misread (a message that is not an object, a
content that is neither text nor a list of parts, a tool message without its
``tool_call_id``) is a 400 naming its path, e.g. ``messages[0].content[1].type``,
instead of a fault halfway through the answer. The shapes are OpenAI's Chat
Completions shapes; keys that are not checked here (``detail`` of an image,
``cache_control`` of a part, sampling options) pass through to upstream as they
are, so a provider's own extensions keep working.

Plain dict and type checks in one pass over the messages: this runs on every
request. The pass also notes what the hold needs to know of the prompt beyond
its size: its images, and whether it carries files (``PromptShape``).
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.errors import InvalidRequest

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
# The content part types each role may send (OpenAI's Chat Completions).
PART_TYPES = {
    "system": ("text",),
    "developer": ("text",),
    "user": ("text", "image_url", "input_audio", "file"),
    "assistant": ("text", "refusal"),
    "tool": ("text",),
    "function": (),
}
RESPONSE_FORMATS = ("text", "json_object", "json_schema")


@dataclass(frozen=True)
class PromptShape:
    """What the hold needs to know of a chat prompt beyond its serialized size."""

    images: int = 0
    image_url_bytes: int = 0  # UTF-8 length of the images' URLs (data: URLs too)
    files: int = 0


def chat_request_check(request: dict) -> PromptShape:
    messages = request.get("messages")
    if not isinstance(messages, list):
        raise InvalidRequest("'messages' must be a list of messages", "messages")
    if not messages:
        raise InvalidRequest("'messages' must hold at least one message", "messages")
    shape = _Shape()
    for index, message in enumerate(messages):
        _message_check(message, f"messages[{index}]", shape)
    if "tools" in request and request["tools"] is not None:
        _tools_check(request["tools"])
    if "functions" in request and request["functions"] is not None:
        _functions_check(request["functions"])
    if "response_format" in request and request["response_format"] is not None:
        _response_format_check(request["response_format"])
    return PromptShape(shape.images, shape.image_url_bytes, shape.files)


def embedding_request_check(request: dict) -> None:
    """``input``: a string, a list of strings, a list of token ids, or a list
    of lists of token ids."""
    value = request.get("input")
    if isinstance(value, str):
        return
    problem = (
        "'input' must be a string, a list of strings, a list of token ids "
        "or a list of lists of token ids"
    )
    if not isinstance(value, list) or not value:
        raise InvalidRequest(problem, "input")
    first = value[0]
    if isinstance(first, str):
        kind = str
    elif _is_int(first):
        kind = int
    elif isinstance(first, list):
        kind = list
    else:
        raise InvalidRequest(problem, "input")
    for index, item in enumerate(value):
        if kind is int:
            fits = _is_int(item)
        elif kind is list:
            fits = isinstance(item, list) and all(_is_int(t) for t in item)
        else:
            fits = isinstance(item, str)
        if not fits:
            raise InvalidRequest(problem, f"input[{index}]")


# --- messages ------------------------------------------------------------------


class _Shape:
    __slots__ = ("files", "image_url_bytes", "images")

    def __init__(self):
        self.images = 0
        self.image_url_bytes = 0
        self.files = 0


def _message_check(message, path: str, shape: _Shape) -> None:
    if not isinstance(message, dict):
        raise InvalidRequest(f"{path} must be an object", path)
    role = message.get("role")
    if role not in ROLES:
        if role is None:
            raise InvalidRequest(f"{path}.role is required", f"{path}.role")
        raise InvalidRequest(
            f"{path}.role must be one of {', '.join(ROLES)}", f"{path}.role"
        )
    name = message.get("name")
    if name is not None and not isinstance(name, str):
        raise InvalidRequest(f"{path}.name must be a string", f"{path}.name")
    content = message.get("content")
    if role == "assistant":
        tool_calls = message.get("tool_calls")
        if tool_calls is not None:
            _tool_calls_check(tool_calls, f"{path}.tool_calls")
        function_call = message.get("function_call")
        if function_call is not None:
            _function_call_check(function_call, f"{path}.function_call")
        if content is None:
            if tool_calls or function_call or message.get("audio") is not None:
                return
            raise InvalidRequest(
                f"{path}.content is required unless the message has tool_calls",
                f"{path}.content",
            )
    elif role == "tool":
        if not isinstance(message.get("tool_call_id"), str):
            raise InvalidRequest(
                f"{path}.tool_call_id is required (a string) in a tool message",
                f"{path}.tool_call_id",
            )
    elif role == "function":
        if not isinstance(name, str):
            raise InvalidRequest(
                f"{path}.name is required in a function message", f"{path}.name"
            )
        if content is None or isinstance(content, str):
            return
        raise InvalidRequest(
            f"{path}.content must be a string or null", f"{path}.content"
        )
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise InvalidRequest(
            f"{path}.content must be a string or a list of content parts",
            f"{path}.content",
        )
    allowed = PART_TYPES[role]
    for index, part in enumerate(content):
        _part_check(part, f"{path}.content[{index}]", allowed, shape)


def _part_check(part, path: str, allowed: tuple[str, ...], shape: _Shape) -> None:
    if not isinstance(part, dict):
        raise InvalidRequest(f"{path} must be an object", path)
    kind = part.get("type")
    if kind not in allowed:
        raise InvalidRequest(
            f"{path}.type must be one of {', '.join(allowed)} in this message",
            f"{path}.type",
        )
    if kind == "text" or kind == "refusal":
        if not isinstance(part.get(kind), str):
            raise InvalidRequest(f"{path}.{kind} must be a string", f"{path}.{kind}")
    elif kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else None
        if not isinstance(url, str) or not url:
            raise InvalidRequest(
                f"{path}.image_url must be an object with a 'url'",
                f"{path}.image_url",
            )
        shape.images += 1
        shape.image_url_bytes += len(url) if url.isascii() else len(url.encode())
    elif kind == "input_audio":
        audio = part.get("input_audio")
        if not (
            isinstance(audio, dict)
            and isinstance(audio.get("data"), str)
            and isinstance(audio.get("format"), str)
        ):
            raise InvalidRequest(
                f"{path}.input_audio must be an object with 'data' and 'format'",
                f"{path}.input_audio",
            )
    else:  # file
        file = part.get("file")
        if not (
            isinstance(file, dict)
            and all(
                isinstance(file.get(k), str | None)
                for k in ("file_data", "file_id", "filename")
            )
            and (file.get("file_data") or file.get("file_id"))
        ):
            raise InvalidRequest(
                f"{path}.file must be an object with 'file_data' or 'file_id'",
                f"{path}.file",
            )
        shape.files += 1


def _tool_calls_check(tool_calls, path: str) -> None:
    if not isinstance(tool_calls, list):
        raise InvalidRequest(f"{path} must be a list of tool calls", path)
    for index, call in enumerate(tool_calls):
        at = f"{path}[{index}]"
        if not isinstance(call, dict):
            raise InvalidRequest(f"{at} must be an object", at)
        if not isinstance(call.get("id"), str):
            raise InvalidRequest(f"{at}.id is required (a string)", f"{at}.id")
        kind = call.get("type")
        if kind == "function":
            _function_call_check(call.get("function"), f"{at}.function")
        elif kind == "custom":
            custom = call.get("custom")
            if not (
                isinstance(custom, dict)
                and isinstance(custom.get("name"), str)
                and isinstance(custom.get("input"), str)
            ):
                raise InvalidRequest(
                    f"{at}.custom must be an object with 'name' and 'input'",
                    f"{at}.custom",
                )
        else:
            raise InvalidRequest(
                f"{at}.type must be 'function' or 'custom'", f"{at}.type"
            )


def _function_call_check(call, path: str) -> None:
    if not (
        isinstance(call, dict)
        and isinstance(call.get("name"), str)
        and isinstance(call.get("arguments"), str)
    ):
        raise InvalidRequest(
            f"{path} must be an object with 'name' and 'arguments' (strings)", path
        )


# --- tools and response formats --------------------------------------------------


def _tools_check(tools) -> None:
    if not isinstance(tools, list):
        raise InvalidRequest("'tools' must be a list of tools", "tools")
    for index, tool in enumerate(tools):
        at = f"tools[{index}]"
        if not isinstance(tool, dict):
            raise InvalidRequest(f"{at} must be an object", at)
        kind = tool.get("type")
        if kind == "function":
            _function_definition_check(tool.get("function"), f"{at}.function")
        elif kind == "custom":
            custom = tool.get("custom")
            if not isinstance(custom, dict) or not isinstance(custom.get("name"), str):
                raise InvalidRequest(
                    f"{at}.custom must be an object with a 'name'", f"{at}.custom"
                )
        else:
            raise InvalidRequest(
                f"{at}.type must be 'function' or 'custom'", f"{at}.type"
            )


def _functions_check(functions) -> None:
    if not isinstance(functions, list):
        raise InvalidRequest("'functions' must be a list of functions", "functions")
    for index, function in enumerate(functions):
        _function_definition_check(function, f"functions[{index}]")


def _function_definition_check(function, path: str) -> None:
    if not isinstance(function, dict):
        raise InvalidRequest(f"{path} must be an object", path)
    if not isinstance(function.get("name"), str) or not function["name"]:
        raise InvalidRequest(f"{path}.name is required (a string)", f"{path}.name")
    parameters = function.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidRequest(
            f"{path}.parameters must be a JSON Schema object", f"{path}.parameters"
        )
    description = function.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidRequest(
            f"{path}.description must be a string", f"{path}.description"
        )


def _response_format_check(response_format) -> None:
    if not isinstance(response_format, dict):
        raise InvalidRequest("'response_format' must be an object", "response_format")
    kind = response_format.get("type")
    if kind not in RESPONSE_FORMATS:
        raise InvalidRequest(
            f"response_format.type must be one of {', '.join(RESPONSE_FORMATS)}",
            "response_format.type",
        )
    if kind == "json_schema":
        schema = response_format.get("json_schema")
        if not isinstance(schema, dict) or not isinstance(schema.get("name"), str):
            raise InvalidRequest(
                "response_format.json_schema must be an object with a 'name'",
                "response_format.json_schema",
            )
        if schema.get("schema") is not None and not isinstance(schema["schema"], dict):
            raise InvalidRequest(
                "response_format.json_schema.schema must be a JSON Schema object",
                "response_format.json_schema.schema",
            )


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
