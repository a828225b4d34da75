"""A fault of the proxy's own after the answer began: what the client received is
still billed. The fault is injected, so the proxy runs in this process (its ASGI
callable, its own database pool, the real upstream process)."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from billing.ledger.reconciliation import ledger_check
from billing.ledger.selectors import balance_get
from money import ceil_div, usd_to_nanos
from proxy import app as proxy_app
from proxy import metering
from proxy.models import RequestLog
from tests.support.proxy import hold_for, nothing_held

pytestmark = pytest.mark.django_db(transaction=True)

INPUT, OUTPUT = 1_250_000_000, 10_000_000_000


@pytest.fixture(autouse=True)
def _upstream_credential(monkeypatch):
    # The catalog's provider reads its key from this variable, as the platform
    # process has it (tests/proxy/conftest.py).
    monkeypatch.setenv("FAKE_UPSTREAM_KEY", "sk-upstream-test")


def run_request(secret: str, body: dict) -> list[dict]:
    """One request through a fresh ProxyApp; answers the ASGI messages it sent."""

    async def go():
        app = proxy_app.ProxyApp(fallback=None)
        sent: list[dict] = []
        delivered = False
        never = asyncio.Event()  # the client stays till the end

        async def receive():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": json.dumps(body).encode()}
            await never.wait()

        async def send(message):
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/v1/chat/completions",
            "headers": [(b"authorization", f"Bearer {secret}".encode())],
        }
        try:
            await app(scope, receive, send)
        finally:
            await app.stop()
        return sent

    # In a thread of its own: a browser test earlier in the session may have
    # left an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result()


def broken_usage(usage):
    raise RuntimeError("a fault after the answer began")


def stream_of(words: int) -> dict:
    return {
        "model": "fake/gpt",
        "messages": [
            {"role": "user", "content": f"#upstream completion_tokens={words}"}
        ],
        "stream": True,
    }


def delivered_text(sent: list[dict]) -> tuple[str, bytes]:
    """The streamed text, and the last event of the stream."""
    body = b"".join(
        m.get("body", b"") for m in sent if m["type"] == "http.response.body"
    )
    events = [e for e in body.split(b"\n\n") if e]
    text = ""
    for event in events[:-1]:
        # The first event also has an ``id:`` line: the request's id.
        data = event.split(b"data: ", 1)[1]
        for choice in json.loads(data).get("choices", []):
            text += choice["delta"].get("content") or ""
    return text, events[-1]


def test_a_fault_mid_stream_bills_what_was_delivered(alice, alice_key, monkeypatch):
    monkeypatch.setattr(metering, "usage_from", broken_usage)
    sent = run_request(alice_key.secret, stream_of(12))

    assert sent[0]["status"] == 200
    assert sent[-1] == {
        "type": "http.response.body",
        "body": sent[-1]["body"],
        "more_body": False,
    }
    text, last = delivered_text(sent)
    assert text == "tok" + " tok" * 11
    assert json.loads(last[6:])["error"]["code"] == "internal_error"
    log = RequestLog.objects.get()
    assert (log.status, log.error, log.usage_estimated) == (502, "internal error", True)
    assert log.completion_tokens == 12
    assert log.prompt_tokens > 0
    expected = ceil_div(log.prompt_tokens * INPUT + 12 * OUTPUT, 10**6)
    assert log.cost_nanos == expected > 12 * OUTPUT // 10**6
    assert balance_get(account=alice.account).total_nanos == (
        usd_to_nanos("50") - expected
    )
    assert nothing_held(alice.account)
    assert ledger_check() == []


def test_output_that_cannot_be_counted_is_charged_its_hold_not_nothing(
    alice, alice_key, upstream, monkeypatch
):
    monkeypatch.setattr(metering, "usage_from", broken_usage)

    def broken_count(call, outputs):
        raise RuntimeError("cannot count")

    monkeypatch.setattr(metering, "usage_estimate", broken_count)
    sent = run_request(alice_key.secret, {**stream_of(3), "max_tokens": 10})
    assert delivered_text(sent)[0] == "tok tok tok"
    log = RequestLog.objects.get()
    assert log.status == 502 and log.usage_estimated
    assert log.cost_nanos == hold_for(upstream.requests()[-1]["body"], 10)
    assert balance_get(account=alice.account).total_nanos == (
        usd_to_nanos("50") - log.cost_nanos
    )
    assert ledger_check() == []


def test_a_fault_before_a_json_answer_is_delivered_charges_nothing(
    alice, alice_key, monkeypatch
):
    monkeypatch.setattr(metering, "usage_from", broken_usage)
    body = {**stream_of(5), "stream": False}
    sent = run_request(alice_key.secret, body)
    assert sent[0]["status"] == 502
    assert json.loads(sent[-1]["body"])["error"]["code"] == "internal_error"
    log = RequestLog.objects.get()
    assert (log.status, log.cost_nanos) == (502, 0)
    assert balance_get(account=alice.account).total_nanos == usd_to_nanos("50")
    assert nothing_held(alice.account)
