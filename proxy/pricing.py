"""Prices and usage, and the most a request could cost (its hold); what it
did cost is metered in ``proxy.metering``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from money import ceil_div
from proxy.errors import InvalidRequest

if TYPE_CHECKING:
    from proxy.catalog import Model

TOKENS_PER_PRICE_UNIT = 1_000_000  # prices are per 1M tokens
# The default of a model's ``image_tokens_max``: what an image in a prompt
# counts in the hold when the catalog says nothing else. It bounds the tile
# pricing of gpt-4o, gpt-4.1 and gpt-5 and Claude's ~1,600; models that bill
# more per image (gpt-4o-mini, up to 48,169) carry their own in the catalog.
# Only the hold counts it: a request is settled at the real count.
IMAGE_TOKEN_ALLOWANCE = 2_000
MAX_CHOICES = 128


@dataclass(frozen=True)
class Price:
    """Nano-USD per 1M tokens."""

    input: int
    cached_input: int
    cache_write: int
    output: int
    version: int | None = None  # the ModelPrice row it comes from


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    cached_tokens: int = 0  # part of prompt_tokens, read from a cache
    cache_write_tokens: int = 0  # part of prompt_tokens, written to a cache
    completion_tokens: int = 0  # includes reasoning tokens, as OpenAI reports
    reasoning_tokens: int = 0
    estimated: bool = False

    @property
    def counted(self) -> bool:
        """Whether it counts any token at all."""
        return bool(self.prompt_tokens or self.completion_tokens)


def chat_prompt_bound(
    *,
    request_bytes: int,
    images: int,
    image_url_bytes: int,
    files: int,
    context_length: int,
    image_tokens_max: int = IMAGE_TOKEN_ALLOWANCE,
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
    ``image_tokens_max`` counted instead, the most one image may cost on the
    model (the catalog's ``image_tokens_max``; ``IMAGE_TOKEN_ALLOWANCE`` when
    not given). It has to be the model's worst case (its highest detail, its
    largest image), since a hold caps the charge: an allowance below what the
    provider bills is a loss on every such image.

    The bound is not cut at the catalog's context length: that number is ours,
    and a provider may accept (and bill) more than it says, so only the bytes
    bound what a request can cost. A file (a PDF's pages become images as well
    as text) has no bound from its bytes alone: a prompt with one is bounded by
    the larger of its bytes and the model's context length."""
    bound = request_bytes - image_url_bytes + images * image_tokens_max
    if files:
        return max(bound, request_bytes, context_length)
    return bound


def output_allowance(request: dict, model: Model) -> int:
    """The output tokens the hold allows for: each of the ``n`` choices may
    produce the whole allowance of one (``output_tokens_allowed``)."""
    return output_tokens_allowed(request, model) * choices_asked(request)


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
            raise InvalidRequest(f"'{name}' must be a positive integer", name)
        allowed.append(value)
    ceiling = model.max_output_tokens or model.context_length
    return min(max(allowed), ceiling) if allowed else ceiling


def max_tokens_asked(request: dict) -> int | None:
    """The output limit a request set (the larger of the two names), for its
    log; None if it set none or not as a positive integer."""
    asked = [
        value
        for value in (request.get("max_completion_tokens"), request.get("max_tokens"))
        if isinstance(value, int) and not isinstance(value, bool) and value > 0
    ]
    return min(max(asked), 2**31 - 1) if asked else None


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
        raise InvalidRequest(f"'n' must be an integer from 1 to {MAX_CHOICES}", "n")
    return value


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
