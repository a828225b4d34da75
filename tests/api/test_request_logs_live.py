"""Calls through the real proxy (the platform in its own process, the openai
SDK as the client), then read back by their X-Request-Id: the log's row, its
detail with the price version and the kept bodies (a stream's message put
together from its events), and the row of the CSV export."""

from __future__ import annotations

import csv
import io

import openai
import pytest
from django.db import connections
from openai import OpenAI

from apikeys.models import KeyKind
from apikeys.services import key_create
from money import usd_to_nanos
from proxy.models import BodyRetention, ModelPrice, RequestLog
from tests.support.keys import bearer
from tests.support.platform import PlatformProcess, database_url

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def platform(django_db_setup, django_db_blocker, upstream):
    with django_db_blocker.unblock():
        url = database_url(connections["default"].settings_dict)
    with PlatformProcess(
        database_url=url, env={"FAKE_UPSTREAM_KEY": "sk-upstream-test"}
    ) as process:
        yield process


@pytest.fixture
def calls(alice, catalog, platform):
    """A JSON call, a streamed one with reasoning, and one upstream refuses,
    by an account that keeps its bodies; their X-Request-Ids."""
    BodyRetention.objects.create(account=alice.account, enabled=True, days=2)
    secret = key_create(account=alice.account, name="prod").secret
    client = OpenAI(base_url=platform.base_url, api_key=secret, max_retries=0)

    def ask(directive: str) -> list[dict]:
        return [{"role": "user", "content": f"Hi #upstream {directive}"}]

    plain = client.chat.completions.with_raw_response.create(
        model="fake/gpt", messages=ask("prompt_tokens=900 cached_tokens=300")
    )
    stream = client.chat.completions.create(
        model="fake/gpt",
        messages=ask("completion_tokens=4 reasoning_tokens=6"),
        stream=True,
        stream_options={"include_usage": True},
    )
    streamed = list(stream)
    with pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(model="fake/gpt", messages=ask("status=500"))
    assert streamed[-1].usage.completion_tokens == 10
    api = bearer(
        key_create(account=alice.account, name="ops", kind=KeyKind.MANAGEMENT).secret
    )
    return api, {
        "plain": plain.headers["x-request-id"],
        "stream": stream.response.headers["x-request-id"],
        "failed": refused.value.response.headers["x-request-id"],
    }


def test_a_streamed_calls_detail_shows_its_message_and_price(calls):
    api, ids = calls
    detail = api.get(f"/api/v1/requests/{ids['stream']}").json()
    log = RequestLog.objects.get(pk=ids["stream"])
    price = ModelPrice.objects.get(model_id="fake/gpt")
    assert (detail["status"], detail["streamed"], detail["finish_reason"]) == (
        "ok",
        True,
        "stop",
    )
    assert detail["upstream_model"] == "gpt-upstream"
    assert detail["tokens"]["completion"] == 10
    assert detail["tokens"]["reasoning"] == 6
    assert detail["price"]["id"] == price.id
    assert usd_to_nanos(detail["price"]["output"]) == price.output_nanos
    kinds = sum(usd_to_nanos(v) for v in detail["cost_by_kind"].values())
    assert kinds == usd_to_nanos(detail["cost"]) == log.cost_nanos > 0
    assert (
        usd_to_nanos(detail["cost_bonus"]) + usd_to_nanos(detail["cost_top_up"])
        == log.cost_nanos
    )
    assert detail["ttft_ms"] is not None
    assert detail["generation_ms"] == log.latency_ms - log.ttft_ms

    bodies = detail["bodies"]
    assert bodies["request"]["stream"] is True
    assert bodies["request"]["messages"][0]["content"].startswith("Hi #upstream")
    message = bodies["response"]["choices"][0]["message"]
    assert message["content"] == "tok tok tok tok"
    assert bodies["response"]["choices"][0]["finish_reason"] == "stop"
    assert bodies["response"]["usage"]["completion_tokens"] == 10
    assert bodies["events"].startswith("data: {")
    assert bodies["truncated"] is False


def test_each_call_is_found_by_its_request_id_in_the_list_and_the_csv(calls):
    api, ids = calls
    rows = {}
    for name, rid in ids.items():
        listed = api.get("/api/v1/requests", {"request_id": rid}).json()
        assert listed["count"] == 1
        rows[name] = listed["results"][0]
    assert rows["plain"]["cached_tokens"] == 300
    assert (rows["failed"]["status"], rows["failed"]["cost"]) == (
        "error",
        "0.000000000",
    )
    assert rows["failed"]["http_status"] >= 500
    assert rows["failed"]["error"]

    detail = api.get(f"/api/v1/requests/{ids['plain']}").json()
    assert detail["bodies"]["response"]["choices"][0]["message"]["role"] == (
        "assistant"
    )
    assert detail["bodies"]["events"] is None

    text = b"".join(api.get("/api/v1/requests.csv").streaming_content).decode()
    exported = {row["id"]: row for row in csv.DictReader(io.StringIO(text))}
    assert set(exported) == set(ids.values())
    for name, row in rows.items():
        line = exported[row["id"]]
        assert (line["cost_usd"], line["status"], line["model"]) == (
            row["cost"],
            row["status"],
            "fake/gpt",
        ), name
