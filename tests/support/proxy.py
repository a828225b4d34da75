"""The proxy in tests: the test model's prices (the ``catalog`` fixture in
tests/conftest.py prices ``fake/gpt`` and ``fake/embed`` at these), the hold
the proxy places for a chat request, and waiting until a worker gives its lease
back."""

from __future__ import annotations

import time

import orjson

from billing.ledger.selectors import balance_get
from money import ceil_div, usd_to_nanos

# USD per 1M tokens of the test model.
PRICES = {
    "input": "1.25",
    "cached_input": "0.125",
    "cache_write": "1.5",
    "output": "10",
}


def nothing_held(account, timeout: float = 5.0) -> bool:
    """Wait until nothing of the account is held: a worker gives its lease back
    once unused for PROXY_LEASE_IDLE_SECONDS."""
    deadline = time.monotonic() + timeout
    while balance_get(account=account).held_nanos:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def hold_for(forwarded: dict, output_tokens: int) -> int:
    """The hold of a text-only chat request at PRICES: its prompt bound is the
    size of the JSON forwarded upstream (``forwarded``, as the upstream process
    recorded it), at the highest input price, plus its output allowance
    (proxy.pricing.chat_prompt_bound and hold_amount)."""
    prompt_price = max(usd_to_nanos(PRICES[k]) for k in PRICES if k != "output")
    prompt_bound = len(orjson.dumps(forwarded))
    return ceil_div(
        prompt_bound * prompt_price + output_tokens * usd_to_nanos(PRICES["output"]),
        10**6,
    )
