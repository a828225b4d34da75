"""Hostile and careless input through the platform process: an upstream that
over-reports usage, holds that no spelling of the request can shrink, malformed
messages, deactivated users, and the headers of every answer."""

from __future__ import annotations

import json
import re
import time

import httpx
import openai
import orjson
import pytest

from accounts.models import User
from apikeys.services import key_create, key_update
from billing.ledger.reconciliation import ledger_check
from billing.ledger.selectors import balance_get
from billing.models import Hold, HoldState
from money import ceil_div, usd_to_nanos
from proxy.models import RequestLog
from proxy.pricing import IMAGE_TOKEN_ALLOWANCE
from tests.support.proxy import hold_for, nothing_held
from tests.support.world import grant

pytestmark = pytest.mark.django_db(transaction=True)

INPUT, OUTPUT = 1_250_000_000, 10_000_000_000
OVER_REPORT = "#upstream prompt_tokens=10000000 reported_completion_tokens=10000000"
# What 10M prompt and 10M completion tokens would cost: $112.50.
OVER_REPORTED_COST = ceil_div(10_000_000 * INPUT + 10_000_000 * OUTPUT, 10**6)


def post(platform, secret: str, body, path: str = "/chat/completions"):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        f"{platform.base_url}{path}",
        headers={"Authorization": f"Bearer {secret}"},
        content=content,
        timeout=20,
    )


# --- a charge is never more than its hold ---------------------------------------


def test_an_over_reporting_upstream_is_charged_no_more_than_the_hold(
    bob, catalog, client_for, upstream
):
    grant(bob, "16")
    leased = key_create(account=bob.account, name="leased")
    limited = key_create(account=bob.account, name="limited")
    key_update(api_key=limited.api_key, limit_nanos=usd_to_nanos("10"))
    ask = {
        "model": "fake/gpt",
        "messages": [{"role": "user", "content": OVER_REPORT}],
        "max_tokens": 1,
    }

    # A key with a credit limit holds on its own: a hold row per request.
    answer = client_for(limited.secret).chat.completions.create(**ask)
    assert answer.usage.completion_tokens == 10_000_000  # passed through as sent
    own_hold = Hold.objects.get(owner=limited.api_key.hold_owner)
    expected = hold_for(upstream.requests()[-1]["body"], 1)
    assert own_hold.amount_nanos == expected
    assert expected < usd_to_nanos("0.001")
    assert (own_hold.state, own_hold.charged_nanos) == (HoldState.SETTLED, expected)

    # A key without one is admitted against the worker's lease: same cap.
    client_for(leased.secret).chat.completions.create(**ask)
    # Streamed, the usage event over-reports the same way.
    chunks = list(
        client_for(leased.secret).chat.completions.create(
            **ask, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].usage.completion_tokens == 10_000_000
    expected_streamed = hold_for(upstream.requests()[-1]["body"], 1)

    logs = list(RequestLog.objects.order_by("created_at"))
    assert [log.status for log in logs] == [200, 200, 200]
    assert [log.cost_nanos for log in logs] == [expected, expected, expected_streamed]
    assert all(log.over_reported for log in logs)
    assert {log.uncapped_cost_nanos for log in logs} == {OVER_REPORTED_COST}
    assert {log.completion_tokens for log in logs} == {10_000_000}
    spent = 2 * expected + expected_streamed
    assert balance_get(account=bob.account).total_nanos == usd_to_nanos("16") - spent
    assert nothing_held(bob.account)
    assert ledger_check() == []


def test_an_honest_upstream_is_charged_its_usage_and_not_flagged(alice, alice_client):
    alice_client.chat.completions.create(
        model="fake/gpt",
        messages=[
            {
                "role": "user",
                "content": "#upstream prompt_tokens=20 completion_tokens=5",
            }
        ],
        max_tokens=5,
    )
    log = RequestLog.objects.get()
    exact = ceil_div(20 * INPUT + 5 * OUTPUT, 10**6)
    assert (log.cost_nanos, log.uncapped_cost_nanos, log.over_reported) == (
        exact,
        exact,
        False,
    )


# --- the hold is computed from the parsed request -------------------------------


def prompt_bound_said(response: httpx.Response) -> int:
    """The prompt bound a 402 names: "(N prompt tokens at most, …)"."""
    assert response.status_code == 402, response.text
    found = re.search(
        r"\((\d+) prompt tokens at most", response.json()["error"]["message"]
    )
    assert found, response.text
    return int(found.group(1))


def image_request(urls: list[str], **extra) -> dict:
    parts = [{"type": "text", "text": "Describe these."}]
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    return {
        "model": "fake/gpt",
        "messages": [{"role": "user", "content": parts}],
        "max_tokens": 100_000,  # more output than any balance here affords: a 402
        **extra,
    }


def test_an_escaped_key_does_not_shrink_the_hold_for_images(
    bob, catalog, platform, upstream
):
    grant(bob, "0.01")
    secret = key_create(account=bob.account, name="images").secret
    upstream.reset_stats()
    body = image_request([f"https://img.example/{i}.png" for i in range(10)])
    plain = json.dumps(body).encode()
    escaped = plain.replace(b'"image_url"', b'"image\\u005furl"')
    assert escaped.count(b"image\\u005furl") == 20 and b'"image_url"' not in escaped
    assert json.loads(escaped) == body

    plain_bound = prompt_bound_said(post(platform, secret, plain))
    assert prompt_bound_said(post(platform, secret, escaped)) == plain_bound
    # Each image adds its allowance and the bytes of its part around the URL.
    without_images = prompt_bound_said(post(platform, secret, image_request([])))
    part = {"type": "image_url", "image_url": {"url": ""}}
    per_image = IMAGE_TOKEN_ALLOWANCE + len(orjson.dumps(part)) + len(b",")
    assert plain_bound - without_images == 10 * per_image
    # Whitespace is not counted either.
    spaced = json.dumps(body, indent=8).encode()
    assert prompt_bound_said(post(platform, secret, spaced)) == plain_bound
    # An image counts its allowance, not the bytes of its URL.
    inline = "data:image/png;base64," + "A" * 50_000
    same_size = "https://img.example/x.png"
    assert prompt_bound_said(
        post(platform, secret, image_request([inline]))
    ) == prompt_bound_said(post(platform, secret, image_request([same_size])))
    assert upstream.stats()["requests"] == 0  # every one was refused first


def test_tools_and_schemas_count_in_the_hold(bob, catalog, platform):
    grant(bob, "0.01")
    secret = key_create(account=bob.account, name="tools").secret
    bare = image_request([])
    schema = {
        "type": "object",
        "properties": {f"field_{i}": {"type": "string"} for i in range(300)},
    }
    with_tools = {
        **bare,
        "tools": [
            {"type": "function", "function": {"name": "f", "parameters": schema}}
        ],
    }
    with_format = {
        **bare,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": schema},
        },
    }
    bound = prompt_bound_said(post(platform, secret, bare))
    schema_bytes = len(orjson.dumps(schema))
    assert prompt_bound_said(post(platform, secret, with_tools)) > bound + schema_bytes
    assert prompt_bound_said(post(platform, secret, with_format)) > bound + schema_bytes
    # A file has no bound from its bytes: the model's context length.
    with_file = image_request([])
    with_file["messages"][0]["content"].append(
        {"type": "file", "file": {"file_id": "file-1"}}
    )
    assert prompt_bound_said(post(platform, secret, with_file)) == 200_000


# --- malformed requests are a 400 before anything is forwarded -------------------

USER = {"role": "user", "content": "hi"}
MALFORMED = [
    ({"messages": ["junk", USER]}, "messages[0]"),
    ({"messages": ["junk", USER], "stream": True}, "messages[0]"),
    ({"messages": []}, "messages"),
    ({"messages": {"role": "user"}}, "messages"),
    ({"messages": [USER, {"content": "hi"}]}, "messages[1].role"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"messages": [{"role": "user"}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": {"text": "x"}}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": ["hi"]}]}, "messages[0].content[0]"),
    (
        {"messages": [{"role": "user", "content": [{"text": "hi"}]}]},
        "messages[0].content[0].type",
    ),
    (
        {"messages": [{"role": "user", "content": [{"type": "video", "url": "x"}]}]},
        "messages[0].content[0].type",
    ),
    (
        {"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]},
        "messages[0].content[0].text",
    ),
    (
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": "https://x/y.png"}],
                }
            ]
        },
        "messages[0].content[0].image_url",
    ),
    (
        {
            "messages": [
                {
                    "role": "system",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "https://x/y.png"}}
                    ],
                }
            ]
        },
        "messages[0].content[0].type",
    ),
    (
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "input_audio", "input_audio": {}}],
                }
            ]
        },
        "messages[0].content[0].input_audio",
    ),
    (
        {"messages": [USER, {"role": "tool", "content": "42"}]},
        "messages[1].tool_call_id",
    ),
    ({"messages": [USER, {"role": "assistant"}]}, "messages[1].content"),
    (
        {"messages": [USER, {"role": "assistant", "content": None, "tool_calls": "x"}]},
        "messages[1].tool_calls",
    ),
    (
        {
            "messages": [
                USER,
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "f"}}
                    ],
                },
            ]
        },
        "messages[1].tool_calls[0].function",
    ),
    ({"messages": [USER], "tools": "x"}, "tools"),
    (
        {"messages": [USER], "tools": [{"type": "function", "function": {}}]},
        "tools[0].function.name",
    ),
    (
        {"messages": [USER], "tools": [{"type": "retrieval"}]},
        "tools[0].type",
    ),
    ({"messages": [USER], "response_format": {"type": "xml"}}, "response_format.type"),
]


def test_malformed_messages_are_400_naming_the_path_and_nothing_is_forwarded(
    alice, alice_key, platform, upstream
):
    upstream.reset_stats()
    for fragment, param in MALFORMED:
        response = post(platform, alice_key.secret, {"model": "fake/gpt", **fragment})
        assert response.status_code == 400, (fragment, response.text)
        assert response.headers["content-type"] == "application/json"
        error = response.json()["error"]
        assert (error["param"], error["type"]) == (param, "invalid_request_error"), (
            fragment
        )
        assert error["message"].startswith(param) or f"'{param}'" in error["message"]
    for body, param in [({"input": 5}, "input"), ({"input": [1, "a"]}, "input[1]")]:
        response = post(
            platform,
            alice_key.secret,
            {"model": "fake/embed", **body},
            path="/embeddings",
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == param
    assert upstream.stats()["requests"] == 0
    logs = RequestLog.objects.all()
    assert len(logs) == len(MALFORMED) + 2
    assert {(log.status, log.cost_nanos) for log in logs} == {(400, 0)}
    assert balance_get(account=alice.account).total_nanos == usd_to_nanos("50")
    assert nothing_held(alice.account)


def test_every_documented_message_shape_is_forwarded(alice, alice_client, upstream):
    answer = alice_client.chat.completions.create(
        model="fake/gpt",
        messages=[
            {"role": "developer", "content": "Be brief."},
            {"role": "system", "content": [{"type": "text", "text": "Use tools."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in these?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://x/y.png", "detail": "low"},
                    },
                    {
                        "type": "input_audio",
                        "input_audio": {"data": "UklGRg==", "format": "wav"},
                    },
                    {
                        "type": "file",
                        "file": {"file_data": "data:application/pdf;base64,JVBE"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "look", "arguments": '{"at": 1}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
            {
                "role": "assistant",
                "content": [{"type": "refusal", "refusal": "No."}],
            },
            {"role": "user", "content": "#upstream completion_tokens=2"},
        ],
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "look",
                    "description": "Looks.",
                    "parameters": {"type": "object", "properties": {}},
                },
            }
        ],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "a", "schema": {"type": "object"}},
        },
    )
    assert answer.choices[0].message.content == "tok tok"
    forwarded = upstream.requests()[-1]["body"]
    assert len(forwarded["messages"]) == 7
    assert forwarded["messages"][3]["tool_calls"][0]["id"] == "call_1"
    assert RequestLog.objects.get().status == 200


def test_stream_null_is_openais_default_not_an_error(alice, alice_key, platform):
    body = {
        "model": "fake/gpt",
        "stream": None,
        "messages": [{"role": "user", "content": "#upstream completion_tokens=2"}],
    }
    response = post(platform, alice_key.secret, body)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "tok tok"
    assert RequestLog.objects.get().streamed is False


# --- a deactivated user's keys ---------------------------------------------------


def test_a_deactivated_users_keys_are_refused_within_the_cache_window(
    alice, alice_key, alice_client
):
    ask = {"model": "fake/gpt", "messages": [{"role": "user", "content": "hi"}]}
    alice_client.chat.completions.create(**ask)  # cached as usable now
    User.objects.filter(pk=alice.pk).update(is_active=False)
    deadline = time.monotonic() + 5
    while True:
        try:
            alice_client.chat.completions.create(**ask)
        except openai.PermissionDeniedError as error:
            assert error.status_code == 403
            assert error.body["code"] == "account_disabled"
            assert error.body["type"] == "permission_error"
            break
        assert time.monotonic() < deadline, "a deactivated user's key works after 5 s"
        time.sleep(0.2)
    # Streaming too, and nothing is forwarded or charged.
    with pytest.raises(openai.PermissionDeniedError):
        alice_client.chat.completions.create(**ask, stream=True)
    spent = balance_get(account=alice.account).total_nanos
    User.objects.filter(pk=alice.pk).update(is_active=True)
    deadline = time.monotonic() + 5
    while True:
        try:
            alice_client.chat.completions.create(**ask)
            break
        except openai.PermissionDeniedError:
            assert time.monotonic() < deadline, "reactivated, the key is still refused"
            time.sleep(0.2)
    assert balance_get(account=alice.account).total_nanos < spent


# --- headers ----------------------------------------------------------------------


def test_every_v1_answer_says_nosniff(alice, alice_key, platform):
    auth = {"Authorization": f"Bearer {alice_key.secret}"}
    chat = {"model": "fake/gpt", "messages": [{"role": "user", "content": "hi"}]}
    answers = {
        "json": httpx.post(
            f"{platform.base_url}/chat/completions", headers=auth, json=chat
        ),
        "models": httpx.get(f"{platform.base_url}/models", headers=auth),
        "no key": httpx.get(f"{platform.base_url}/models"),
        "bad request": httpx.post(
            f"{platform.base_url}/chat/completions", headers=auth, json={}
        ),
        "unknown url": httpx.get(f"{platform.base_url}/nothing", headers=auth),
    }
    with httpx.stream(
        "POST",
        f"{platform.base_url}/chat/completions",
        headers=auth,
        json={**chat, "stream": True},
        timeout=20,
    ) as sse:
        sse.read()
        answers["sse"] = sse
    statuses = {name: answer.status_code for name, answer in answers.items()}
    assert statuses == {
        "json": 200,
        "models": 200,
        "no key": 401,
        "bad request": 400,
        "unknown url": 404,
        "sse": 200,
    }
    assert answers["sse"].headers["content-type"].startswith("text/event-stream")
    for name, answer in answers.items():
        assert answer.headers.get("x-content-type-options") == "nosniff", name


def test_operators_list_over_reported_requests_in_admin(alice, catalog, client, ops):
    api_key = key_create(account=alice.account, name="k").api_key
    logs = {
        flagged: RequestLog.objects.create(
            account=alice.account,
            api_key=api_key,
            model="fake/gpt",
            provider="fake",
            endpoint="chat",
            status=200,
            cost_nanos=150_000,
            uncapped_cost_nanos=112_500_000_000 if flagged else 150_000,
            over_reported=flagged,
        )
        for flagged in (True, False)
    }
    client.force_login(ops)
    page = client.get("/admin/proxy/requestlog/?over_reported__exact=1")
    assert page.status_code == 200
    listing = page.content.decode()
    assert str(logs[True].pk) in listing and str(logs[False].pk) not in listing
    assert "112.5" in listing  # the uncapped cost beside the charge
