"""Metering: what a request used, what that costs, and what it is charged.

- Usage is upstream's own count (OpenAI's usage object) when upstream sent one
  (``usage_from``).
- Otherwise it is counted offline with the model's tokenizer
  (``usage_estimate``): the prompt, and the output the client received. A JSON
  answer's messages and a stream's deltas are counted alike (content,
  reasoning, refusals and tool calls: ``output_text``), so the same answer
  costs the same streamed or not.
- The cost is ``ceil(Σ tokens × price / 1M)`` (``usage_cost``), and the charge
  never exceeds the request's hold (``charge``): usage that upstream reports
  beyond it is logged for operators, not charged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from money import ceil_div
from proxy.pricing import TOKENS_PER_PRICE_UNIT, Price, Usage
from proxy.tokenizer import count_tokens

if TYPE_CHECKING:
    from proxy.call import Call

logger = logging.getLogger(__name__)

# The largest value of the request log's token counts (PostgreSQL integer):
# upstream may report anything.
MAX_TOKENS_LOGGED = 2**31 - 1
# What a choice's message (a JSON answer) or delta (a stream) says, as text.
OUTPUT_TEXTS = ("content", "reasoning_content", "reasoning", "refusal")


def meter(call: Call, reported, outputs: Iterable[dict]) -> None:
    """Set the call's usage and cost: upstream's count (``reported``, its usage
    object) if it sent one, else ``outputs`` (the messages or deltas the client
    received) and the prompt counted offline."""
    usage = usage_from(reported)
    if usage is None or not usage.counted:
        # No usage object, or one that counts nothing (``{}``, counts that are
        # not numbers): what was delivered is counted here instead.
        usage = usage_estimate(call, outputs)
    call.usage = usage
    call.cost = usage_cost(usage, call.price)


def meter_delivered(call: Call) -> None:
    """After a fault of ours: the cost of the output already streamed to the
    client, counted offline, so that it is billed. If even that cannot be
    counted, the request is charged its hold (its admitted worst case) rather
    than nothing."""
    if call.relay is None or call.price is None:
        return  # no output was delivered
    try:
        call.usage = usage_estimate(call, call.relay.delivered())
        call.cost = usage_cost(call.usage, call.price)
    except Exception:
        logger.exception("request %s: delivered output not counted", call.id)
        call.usage = Usage(estimated=True)
        call.cost = call.held
        call.error = "internal error; output not counted, charged its hold"


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


def usage_estimate(call: Call, outputs: Iterable[dict]) -> Usage:
    """The prompt and ``outputs`` counted offline."""
    tokenizer = call.model.tokenizer
    return Usage(
        prompt_tokens=prompt_tokens(call.request, call.endpoint, tokenizer),
        completion_tokens=count_tokens(output_text(outputs), tokenizer),
        estimated=True,
    )


def answer_messages(answer: dict) -> Iterable[dict]:
    """The message of every choice of a JSON answer."""
    choices = answer.get("choices")
    for choice in choices if isinstance(choices, list) else ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict):
            yield message


def finish_reason(answer: dict) -> str:
    """Why the first choice of a JSON answer ended ("stop", "length",
    "tool_calls", …), or ""."""
    choices = answer.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        reason = choices[0].get("finish_reason")
        if isinstance(reason, str):
            return reason
    return ""


def output_text(outputs: Iterable[dict]) -> str:
    """The text of choices' messages or deltas: content, reasoning, refusals,
    and the name and arguments of tool calls. Upstream's answers may have any
    shape: nothing here may fail."""
    text = []
    for output in outputs:
        for name in OUTPUT_TEXTS:
            text.append(content_text(output.get(name)))
        calls = output.get("tool_calls")
        for tool_call in calls if isinstance(calls, list) else ():
            function = (
                tool_call.get("function") if isinstance(tool_call, dict) else None
            )
            if not isinstance(function, dict):
                continue
            for name in ("name", "arguments"):
                if isinstance(function.get(name), str):
                    text.append(function[name])
    return "".join(text)


def prompt_tokens(request: dict, endpoint: str, tokenizer: str) -> int:
    """The prompt counted offline: the text of every message (or input)."""
    texts = []
    if endpoint == "chat":
        for message in request.get("messages") or []:
            texts.append(content_text(message.get("content")))
        overhead = 3 + 4 * len(texts)
    else:
        value = request.get("input")
        texts = (
            [value]
            if isinstance(value, str)
            else [v for v in value or [] if isinstance(v, str)]
        )
        overhead = 0
    return overhead + sum(count_tokens(t, tokenizer) for t in texts)


def content_text(content) -> str:
    """A content as text: a string, or the text of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text") or ""
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def usage_cost(usage: Usage, price: Price) -> int:
    """``ceil(Σ tokens_i × price_i / 1M)``: one rounding, up, per request.
    Reasoning tokens are inside completion_tokens and bill as output."""
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    written = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
    uncached = usage.prompt_tokens - cached - written
    total = (
        uncached * price.input
        + cached * price.cached_input
        + written * price.cache_write
        + usage.completion_tokens * price.output
    )
    return ceil_div(total, TOKENS_PER_PRICE_UNIT)


def cost_parts(usage: Usage, price: Price) -> tuple[int, int, int]:
    """What the uncached input, the cached input and the cache writes cost,
    each rounded down: the output's cost is the rest of ``usage_cost`` (it
    takes the one rounding up). The request log keeps the charge by kind."""
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    written = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
    uncached = usage.prompt_tokens - cached - written
    return (
        uncached * price.input // TOKENS_PER_PRICE_UNIT,
        cached * price.cached_input // TOKENS_PER_PRICE_UNIT,
        written * price.cache_write // TOKENS_PER_PRICE_UNIT,
    )


def charge(*, cost: int, held: int) -> int:
    """What a request is charged: its cost, and never more than its hold. Usage
    reported beyond the hold (an upstream that over-reports) is not charged; the
    log keeps the uncapped cost, flagged, for operators."""
    return min(cost, held)
