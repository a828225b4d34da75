"""What a request costs, and the most it could cost (its hold)."""

from __future__ import annotations

from dataclasses import dataclass

from money import ceil_div

TOKENS_PER_PRICE_UNIT = 1_000_000  # prices are per 1M tokens
# An image in a prompt counts as this many tokens in the hold (the largest
# OpenAI-style image costs fewer); it is only an upper bound, settled at the
# real count.
IMAGE_TOKEN_ALLOWANCE = 2_000


@dataclass(frozen=True)
class Price:
    """Nano-USD per 1M tokens."""

    input: int
    cached_input: int
    cache_write: int
    output: int


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    cached_tokens: int = 0  # part of prompt_tokens, read from a cache
    cache_write_tokens: int = 0  # part of prompt_tokens, written to a cache
    completion_tokens: int = 0  # includes reasoning tokens, as OpenAI reports
    reasoning_tokens: int = 0
    estimated: bool = False


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


def chat_prompt_bound(
    *,
    request_bytes: int,
    images: int,
    image_url_bytes: int,
    files: int,
    context_length: int,
) -> int:
    """An upper bound of a chat request's prompt tokens, from the request as
    parsed and serialized again (``request_bytes``: the UTF-8 length of the
    JSON forwarded upstream), never from the raw body, so no spelling of the
    request (``\\u`` escapes, whitespace) changes it.

    Why it bounds: a token is at least one byte of text, and the serialized
    request carries every text the model reads (each message's role, name and
    content, tool calls, tools and their schemas, response_format schemas) at
    its UTF-8 length or longer (quotes and escapes only add), plus the keys and
    brackets around them, which outnumber the few tokens of chat formatting per
    message. An image is not read as text: its URL's bytes are taken out and
    ``IMAGE_TOKEN_ALLOWANCE`` counted instead. A file (a PDF's pages become
    images as well as text) has no bound from its bytes, so a prompt with a file
    is bounded by the model's context length, as every prompt is."""
    if files:
        return context_length
    bound = request_bytes - image_url_bytes + images * IMAGE_TOKEN_ALLOWANCE
    return min(bound, context_length)


def hold_amount(*, prompt_bound: int, output_allowance: int, price: Price) -> int:
    """The worst case: every prompt token at the highest input price, and the
    whole output allowance."""
    prompt_price = max(price.input, price.cached_input, price.cache_write)
    total = prompt_bound * prompt_price + output_allowance * price.output
    return max(ceil_div(total, TOKENS_PER_PRICE_UNIT), 1)


def affordable_output_tokens(*, available: int, prompt_bound: int, price: Price) -> int:
    """How many output tokens the available balance pays for after the prompt."""
    prompt_price = max(price.input, price.cached_input, price.cache_write)
    left = available * TOKENS_PER_PRICE_UNIT - prompt_bound * prompt_price
    if left <= 0 or price.output <= 0:
        return 0
    return left // price.output
