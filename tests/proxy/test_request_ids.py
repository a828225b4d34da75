"""Every /v1 answer names its request (X-Request-Id, and the first event of a
stream), and the request's log keeps what its detail shows: the charge by kind
of token, why it finished, the upstream model and the price version. The
hourly rollup counts it in the same commit."""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta

import httpx
import openai
import pytest

from apikeys.services import key_create
from money import ceil_div
from proxy.models import ModelPrice, RequestLog, UsageRollup, UsageRollupDay
from proxy.rollups import usage_fold

pytestmark = pytest.mark.django_db(transaction=True)

INPUT, CACHED, OUTPUT = 1_250_000_000, 125_000_000, 10_000_000_000


def ask(directive: str) -> dict:
    return {
        "model": "fake/gpt",
        "messages": [{"role": "user", "content": f"Hello {directive}"}],
    }


def test_a_json_answer_names_its_log_which_keeps_the_charge_by_kind(
    alice, alice_client
):
    raw = alice_client.chat.completions.with_raw_response.create(
        **ask("#upstream prompt_tokens=1000 cached_tokens=400 completion_tokens=7")
    )
    completion = raw.parse()
    request_id = raw.headers["x-request-id"]
    assert completion._request_id == request_id

    log = RequestLog.objects.get()
    assert str(log.id) == request_id
    assert uuid.UUID(request_id).version == 7
    # 600 uncached and 400 cached prompt tokens, 7 completion tokens.
    assert log.input_cost_nanos == 600 * INPUT // 10**6 == 750_000
    assert log.cached_cost_nanos == 400 * CACHED // 10**6 == 50_000
    assert log.cache_write_cost_nanos == 0
    assert log.output_cost_nanos == 7 * OUTPUT // 10**6 == 70_000
    assert log.cost_nanos == ceil_div(600 * INPUT + 400 * CACHED + 7 * OUTPUT, 10**6)
    assert (
        log.input_cost_nanos
        + log.cached_cost_nanos
        + log.cache_write_cost_nanos
        + log.output_cost_nanos
        == log.cost_nanos
    )
    assert (log.finish_reason, log.upstream_model, log.cancelled) == (
        "stop",
        "gpt-upstream",
        False,
    )
    assert log.price_id == ModelPrice.objects.get(model_id="fake/gpt").id

    assert usage_fold() == 1
    rollup = UsageRollup.objects.get()
    assert (rollup.account_id, rollup.api_key_id, rollup.model, rollup.provider) == (
        alice.account.id,
        log.api_key_id,
        "fake/gpt",
        "fake",
    )
    assert rollup.hour == log.created_at.replace(minute=0, second=0, microsecond=0)
    assert (rollup.requests, rollup.errors) == (1, 0)
    assert (rollup.prompt_tokens, rollup.cached_tokens, rollup.completion_tokens) == (
        1000,
        400,
        7,
    )
    assert rollup.cost_nanos == log.cost_nanos
    assert rollup.output_cost_nanos == log.output_cost_nanos


def test_a_stream_names_its_request_in_the_header_and_its_first_event(
    alice, alice_key, platform
):
    body = {**ask("#upstream completion_tokens=3 finish=length"), "stream": True}
    with httpx.stream(
        "POST",
        f"{platform.base_url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {alice_key.secret}"},
        timeout=20,
    ) as response:
        request_id = response.headers["x-request-id"]
        text = response.read().decode()
    first_event = text.split("\n\n")[0]
    assert first_event.startswith(f"id: {request_id}\ndata: ")
    # Only the first event carries it.
    assert text.count("id: ") == 1

    log = RequestLog.objects.get()
    assert str(log.id) == request_id
    assert (log.streamed, log.finish_reason, log.completion_tokens) == (
        True,
        "length",
        3,
    )


def test_the_sdk_reads_a_stream_that_carries_the_request_id(alice_client):
    stream = alice_client.chat.completions.create(
        **ask("#upstream completion_tokens=4"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "tok tok tok tok"
    assert chunks[-1].usage.completion_tokens == 4
    assert RequestLog.objects.get().finish_reason == "stop"


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, ask(""), 401),
        ({"Authorization": "Bearer sk-ap-v1-nope"}, ask(""), 401),
        (None, {"model": "nobody/none", "messages": []}, 404),
        (None, {"model": "fake/gpt"}, 400),
    ],
    ids=["no key", "bad key", "unknown model", "bad request"],
)
def test_every_error_answer_has_a_request_id(
    alice_key, platform, headers, body, status
):
    if headers is None:
        headers = {"Authorization": f"Bearer {alice_key.secret}"}
    response = httpx.post(
        f"{platform.base_url}/chat/completions", json=body, headers=headers, timeout=20
    )
    assert response.status_code == status
    assert uuid.UUID(response.headers["x-request-id"]).version == 7


def test_a_refused_request_is_logged_under_its_request_id(bob, catalog, platform):
    # Bob has no credits: 402 before anything goes upstream.
    secret = key_create(account=bob.account, name="empty").secret
    response = httpx.post(
        f"{platform.base_url}/chat/completions",
        json=ask("#upstream completion_tokens=3"),
        headers={"Authorization": f"Bearer {secret}"},
        timeout=20,
    )
    assert response.status_code == 402
    log = RequestLog.objects.get(id=response.headers["x-request-id"])
    assert (log.status, log.cost_nanos, log.account_id) == (402, 0, bob.account.id)


def test_an_upstream_error_is_logged_under_its_request_id(alice, alice_client):
    with pytest.raises(openai.InternalServerError) as failed:
        alice_client.chat.completions.create(**ask("#upstream status=503"))
    request_id = failed.value.response.headers["x-request-id"]
    log = RequestLog.objects.get(id=request_id)
    assert log.status == 502
    assert usage_fold() == 1
    rollup = UsageRollup.objects.get()
    assert (rollup.requests, rollup.errors, rollup.cost_nanos) == (1, 1, 0)


def test_the_daily_rollups_are_the_sums_of_the_hourly_ones(alice, alice_client):
    for directive in ("prompt_tokens=10 completion_tokens=2", "status=500"):
        with contextlib.suppress(openai.InternalServerError):
            alice_client.chat.completions.create(**ask(f"#upstream {directive}"))
    assert usage_fold() == 2
    hourly = UsageRollup.objects.get()
    # An hour moved to another day, and a row taken away: the days follow.
    UsageRollup.objects.create(
        account=alice.account,
        hour=hourly.hour - timedelta(days=3),
        api_key_id=hourly.api_key_id,
        model="other/model",
        provider="other",
        requests=4,
        cost_nanos=40,
    )
    moved = UsageRollup.objects.get(model="other/model")
    moved.hour -= timedelta(days=1)
    moved.save()

    def days():
        return {
            (d.day, d.model): (d.requests, d.errors, d.prompt_tokens, d.cost_nanos)
            for d in UsageRollupDay.objects.filter(account=alice.account)
            if d.requests
        }

    today = hourly.hour.date()
    assert days() == {
        (today, "fake/gpt"): (2, 1, 10, hourly.cost_nanos),
        (today - timedelta(days=4), "other/model"): (4, 0, 0, 40),
    }
    moved.delete()
    assert days() == {(today, "fake/gpt"): (2, 1, 10, hourly.cost_nanos)}
