"""Metering without upstream's count: a JSON answer and a stream with the same
output are counted alike (content, reasoning, refusals and tool calls)."""

from __future__ import annotations

import json
from types import SimpleNamespace

from proxy import metering
from proxy.pricing import Price, Usage, chat_prompt_bound
from proxy.streaming import SseRelay
from proxy.tokenizer import count_tokens

PRICE = Price(input=1_250_000_000, cached_input=0, cache_write=0, output=10**10)
MESSAGE = {
    "role": "assistant",
    "reasoning_content": "first think it over",
    "content": "the answer",
    "tool_calls": [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "lookup", "arguments": '{"q": "tok"}'},
        }
    ],
}


def call_for(request: dict) -> SimpleNamespace:
    return SimpleNamespace(
        request=request,
        endpoint="chat",
        model=SimpleNamespace(tokenizer="o200k_base"),
        price=PRICE,
        usage=Usage(),
        cost=0,
    )


def stream_of(message: dict) -> SseRelay:
    """The same message as a stream: one delta per part, as upstream sends."""
    deltas = [{"role": "assistant"}]
    deltas += [
        {name: message[name]}
        for name in ("reasoning_content", "content")
        if name in message
    ]
    deltas += [
        {"tool_calls": [dict(c, index=0)]} for c in message.get("tool_calls", [])
    ]
    relay = SseRelay(wants_usage=False)
    for delta in deltas:
        event = {"choices": [{"index": 0, "delta": delta}]}
        relay.feed(b"data: " + json.dumps(event).encode() + b"\n\n")
    return relay


def test_a_json_answer_and_a_stream_without_usage_are_counted_alike():
    request = {"model": "fake/gpt", "messages": [{"role": "user", "content": "hi"}]}
    json_call, stream_call = call_for(request), call_for(request)

    metering.meter(
        json_call, None, metering.answer_messages({"choices": [{"message": MESSAGE}]})
    )
    metering.meter(stream_call, None, stream_of(MESSAGE).delivered())

    expected = count_tokens('first think it overthe answerlookup{"q": "tok"}')
    assert json_call.usage.completion_tokens == expected
    assert json_call.usage == stream_call.usage
    assert json_call.usage.estimated
    assert json_call.cost == stream_call.cost > 0


def test_upstreams_count_wins_over_the_offline_one():
    call = call_for({"messages": []})
    reported = {"prompt_tokens": 7, "completion_tokens": 3}
    metering.meter(
        call, reported, metering.answer_messages({"choices": [{"message": MESSAGE}]})
    )
    assert call.usage == Usage(prompt_tokens=7, completion_tokens=3)
    assert call.cost == metering.usage_cost(call.usage, PRICE)


def test_odd_shapes_from_upstream_count_as_nothing():
    outputs = [{"content": 5, "tool_calls": [None, {"function": "x"}], "refusal": None}]
    assert metering.output_text(outputs) == ""
    assert list(metering.answer_messages({"choices": [None, {"message": []}]})) == []


def test_the_charge_never_exceeds_the_hold():
    assert metering.charge(cost=120, held=100) == 100
    assert metering.charge(cost=80, held=100) == 80


def test_a_usage_object_that_counts_nothing_is_counted_offline():
    # ``{}`` or counts that are not numbers: the delivered output is not free.
    for reported in ({}, {"prompt_tokens": "7", "completion_tokens": None}):
        call = call_for({"messages": [{"role": "user", "content": "hi"}]})
        metering.meter(
            call,
            reported,
            metering.answer_messages({"choices": [{"message": MESSAGE}]}),
        )
        assert call.usage.estimated
        assert call.usage.completion_tokens == count_tokens(
            'first think it overthe answerlookup{"q": "tok"}'
        )
        assert call.cost > 0


def test_the_prompt_bound_is_not_cut_at_the_catalogs_context_length():
    # The catalog's context length is ours; a provider may take (and bill)
    # more, so only the request's bytes bound its prompt.
    bound = chat_prompt_bound(
        request_bytes=300_000,
        images=0,
        image_url_bytes=0,
        files=0,
        context_length=200_000,
    )
    assert bound == 300_000
    with_file = dict(request_bytes=500_000, images=0, image_url_bytes=0, files=1)
    assert chat_prompt_bound(**with_file, context_length=200_000) == 500_000
    assert chat_prompt_bound(**with_file, context_length=1_000_000) == 1_000_000
