"""The Logs pages: filters select the rows and their count, the cursor pages
through them without repeating or skipping one, the CSV link carries the same
filters, bad values are named on the form (400, never 500), and a request's
detail shows what it was charged and why; another account's request is a 404."""

from __future__ import annotations

import json
import re
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone

from money import format_usd
from proxy.models import BodyRetention, ModelPrice, RequestBody
from tests.support.keys import make_key, make_log
from tests.support.pages import texts

pytestmark = pytest.mark.django_db
URL = "/console/logs"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def row_ids(response) -> list[str]:
    return re.findall(
        r'data-testid="log-row" data-id="([0-9a-f-]{36})"', response.content.decode()
    )


def link(response, rel: str) -> str | None:
    match = re.search(rf'href="([^"]*)" rel="{rel}"', response.content.decode())
    return match.group(1).replace("&amp;", "&") if match else None


@pytest.fixture
def logs(alice):
    """alice's requests on two keys: ok and failed ones, two models, a length
    stop; bob has one of his own."""
    production = make_key(alice, name="production-app")
    batch = make_key(alice, name="batch-jobs")
    made = {
        "gpt_ok": [
            make_log(production, at=START + timedelta(minutes=i), model="openai/gpt-5")
            for i in range(4)
        ],
        "length": make_log(
            production,
            at=START + timedelta(minutes=5),
            model="openai/gpt-5",
            finish_reason="length",
        ),
        "other_model": make_log(
            production,
            at=START + timedelta(minutes=6),
            model="anthropic/claude",
            provider="anthropic",
        ),
        "failed": make_log(
            batch,
            at=START + timedelta(minutes=7),
            model="openai/gpt-5",
            status=502,
            error="upstream timed out",
            completion_tokens=0,
            cost_nanos=0,
            cost_bonus_nanos=0,
            input_cost_nanos=0,
        ),
    }
    return {"production": production, "batch": batch, **made}


def test_filters_select_the_rows_and_count_them(client, alice, logs):
    client.force_login(alice)
    response = client.get(
        URL,
        {
            "model": "openai/gpt-5",
            "status": "ok",
            "key": str(logs["production"].api_key.pk),
        },
    )
    assert response.status_code == 200
    expected = [logs["length"], *reversed(logs["gpt_ok"])]
    assert row_ids(response) == [str(log.id) for log in expected]
    assert texts(response, "logs-count") == ["5 matching requests"]
    # Columns: the key's name, throughput (20 tokens in 420 - 180 ms), cost.
    row = texts(response, "log-row")[0]
    assert "production-app" in row and "83.3 tok/s" in row and "length" in row
    assert format_usd(325_000, places=6) in row

    errors = client.get(URL, {"status": "error"})
    assert row_ids(errors) == [str(logs["failed"].id)]
    assert "upstream timed out" in texts(errors, "log-row")[0]
    by_provider = client.get(URL, {"provider": "anthropic"})
    assert row_ids(by_provider) == [str(logs["other_model"].id)]
    by_reason = client.get(URL, {"finish_reason": "length"})
    assert row_ids(by_reason) == [str(logs["length"].id)]
    both_keys = client.get(
        URL,
        {"key": [str(logs["production"].api_key.pk), str(logs["batch"].api_key.pk)]},
    )
    assert len(row_ids(both_keys)) == 7
    assert texts(both_keys, "logs-count") == ["7 matching requests"]


def test_a_request_id_finds_its_request(client, alice, logs):
    client.force_login(alice)
    wanted = logs["other_model"].id
    response = client.get(URL, {"request_id": str(wanted)})
    assert row_ids(response) == [str(wanted)]
    assert (
        f'href="{reverse("console:log", args=[wanted])}"' in response.content.decode()
    )


def test_the_csv_link_carries_the_filters_but_not_the_page(client, alice, logs):
    client.force_login(alice)
    key = str(logs["batch"].api_key.pk)
    response = client.get(URL, {"model": "openai/gpt-5", "key": key, "cursor": ""})
    csv = response.context["csv_url"]
    parts = urlsplit(csv)
    assert parts.path == reverse("api-requests-csv")
    assert parse_qs(parts.query) == {"key": [key], "model": ["openai/gpt-5"]}


def test_the_cursor_pages_through_without_repeats_or_gaps(client, alice):
    key = make_key(alice, name="busy")
    made = [make_log(key, at=START + timedelta(seconds=i)) for i in range(120)]
    newest_first = [str(log.id) for log in reversed(made)]
    client.force_login(alice)

    first = client.get(URL)
    assert row_ids(first) == newest_first[:50]
    assert link(first, "prev") is None
    second = client.get(URL + link(first, "next"))
    assert row_ids(second) == newest_first[50:100]
    # A request arriving meanwhile shifts nothing on the pages after the first.
    make_log(key, at=START + timedelta(minutes=10))
    third = client.get(URL + link(second, "next"))
    assert row_ids(third) == newest_first[100:]
    assert link(third, "next") is None
    back = client.get(URL + link(third, "prev"))
    assert row_ids(back) == newest_first[50:100]
    assert texts(back, "logs-count") == ["121 matching requests"]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"from": "yesterday"}, "is not an ISO 8601 date"),
        ({"status": "maybe"}, "is not a status"),
        ({"key": "abc"}, "is not a key id"),
        ({"request_id": "not-an-id"}, "is not a request id"),
        ({"from": "2026-03-05", "to": "2026-03-01"}, "Must not be before from"),
        ({"cursor": "garbage"}, "Not a cursor of this list"),
    ],
)
def test_bad_values_are_named_on_the_form(client, alice, logs, params, named):
    client.force_login(alice)
    response = client.get(URL, params)
    assert response.status_code == 400
    assert named in response.content.decode()
    assert row_ids(response) == []


def test_nothing_of_another_account_is_listed(client, bob, logs):
    client.force_login(bob)
    response = client.get(URL)
    assert row_ids(response) == []
    assert "No requests yet" in response.content.decode()
    # alice's key id selects nothing of bob's (and no error).
    mine = client.get(URL, {"key": str(logs["production"].api_key.pk)})
    assert mine.status_code == 200 and row_ids(mine) == []


def test_a_requests_detail_shows_its_charge(client, alice, catalog_price):
    key = make_key(alice, name="production-app")
    log = make_log(
        key,
        at=START,
        model="fake/gpt",
        provider="fake",
        upstream_model="gpt-upstream",
        price_id=catalog_price.pk,
        streamed=True,
        prompt_tokens=1_000,
        cached_tokens=400,
        cache_write_tokens=100,
        completion_tokens=70,
        reasoning_tokens=20,
        input_cost_nanos=625_000,
        cached_cost_nanos=50_000,
        cache_write_cost_nanos=150_000,
        output_cost_nanos=700_000,
        cost_nanos=1_525_000,
        cost_bonus_nanos=1_000_000,
        cost_topup_nanos=525_000,
        latency_ms=1_500,
        ttft_ms=800,
        finish_reason="stop",
    )
    client.force_login(alice)
    response = client.get(reverse("console:log", args=[log.id]))
    assert response.status_code == 200
    assert texts(response, "log-id") == [str(log.id)]
    assert texts(response, "log-cost") == ["$0.001525"]
    assert texts(response, "log-tokens") == [
        "Prompt 1,000 Cached read 400 Cache write 100 Completion 70 Reasoning 20"
    ]
    assert texts(response, "log-costs") == [
        "Input $0.000625 Cached read $0.000050 Cache write $0.000150 "
        "Output $0.000700 Total $0.001525"
    ]
    # Bonus credits first, then top-up credits.
    assert texts(response, "log-pools") == [
        "Bonus & compensation credits $0.001000 Top-up credits $0.000525"
    ]
    timing = texts(response, "log-timing")[0]
    assert "Time to first token 800 ms" in timing
    assert "Generation time 700 ms" in timing
    assert "Throughput 100.0 tokens/s" in timing
    assert "Streamed Yes" in timing and "Cancelled by the client No" in timing
    route = texts(response, "log-route")[0]
    assert "Upstream model gpt-upstream" in route
    assert f"Price version #{catalog_price.pk}" in route
    assert "Input per 1M $1.25" in route and "Cached input per 1M $0.125" in route


def test_an_estimated_cancelled_request_says_so(client, alice):
    key = make_key(alice)
    log = make_log(
        key, at=START, status=499, cancelled=True, usage_estimated=True, error=""
    )
    client.force_login(alice)
    response = client.get(reverse("console:log", args=[log.id]))
    assert "Cancelled by the client Yes" in texts(response, "log-timing")[0]
    assert texts(response, "log-estimated")
    listed = client.get(URL)
    assert "cancelled" in texts(listed, "log-row")[0]
    assert "est." in texts(listed, "log-row")[0]


def test_another_accounts_request_is_not_found(client, alice, bob, logs):
    client.force_login(bob)
    response = client.get(reverse("console:log", args=[logs["failed"].id]))
    assert response.status_code == 404
    assert client.get(reverse("console:log", args=[uuid.uuid4()])).status_code == 404


def test_a_keys_page_links_to_its_logs(client, alice, logs):
    client.force_login(alice)
    key = logs["batch"].api_key
    response = client.get(reverse("keys:detail", args=[key.pk]))
    assert f'href="/console/logs?key={key.pk}"' in response.content.decode()
    listed = client.get(URL, {"key": str(key.pk)})
    assert row_ids(listed) == [str(logs["failed"].id)]


@pytest.fixture
def catalog_price(db):
    from proxy.models import CatalogModel, Provider

    provider = Provider.objects.create(name="fake", base_url="http://127.0.0.1:9")
    model = CatalogModel.objects.create(
        id="fake/gpt", provider=provider, upstream="gpt-upstream", context_length=8192
    )
    return ModelPrice.objects.create(
        model=model,
        input_nanos=1_250_000_000,
        cached_input_nanos=125_000_000,
        cache_write_nanos=1_500_000_000,
        output_nanos=10_000_000_000,
    )


def kept(log, request: dict, response: str | dict) -> RequestBody:
    """The bodies of ``log`` as the proxy keeps them (compressed), for an
    account whose switch is on."""
    keeping(log.account_id)
    answer = response if isinstance(response, str) else json.dumps(response)
    return RequestBody.objects.create(
        request_id=log.id,
        account_id=log.account_id,
        created_at=log.created_at,
        expires_at=timezone.now() + timedelta(days=7),
        request=zlib.compress(json.dumps(request).encode()),
        response=zlib.compress(answer.encode()),
    )


def keeping(account_id: int) -> None:
    BodyRetention.objects.update_or_create(
        account_id=account_id, defaults={"enabled": True}
    )


def test_kept_bodies_show_the_conversation_and_its_json(client, alice):
    log = make_log(make_key(alice), at=START, finish_reason="tool_calls")
    kept(
        log,
        {
            "model": "openai/gpt-5",
            "messages": [
                {"role": "system", "content": "You answer briefly."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is the weather <b>here</b>?"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,AAAA"},
                        },
                    ],
                },
            ],
        },
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "tool_calls",
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {
                                    "name": "get_weather",
                                    "arguments": '{"city":"Paris"}',
                                },
                            }
                        ],
                    },
                }
            ],
        },
    )
    client.force_login(alice)
    response = client.get(reverse("console:log", args=[log.id]))
    messages = texts(response, "log-message")
    assert messages[0] == "System You answer briefly."
    assert messages[1].startswith("User What is the weather <b>here</b>?")
    assert "Image: inline image/png" in messages[1]
    assert messages[2].startswith("Assistant answer · tool_calls")
    assert texts(response, "log-tool-call") == [
        'tool call get_weather call_1 { "city": "Paris" }'
    ]
    body = response.content.decode()
    # Escaped, never markup.
    assert "&lt;b&gt;here&lt;/b&gt;" in body and "<b>here</b>" not in body
    views = texts(response, "log-json")
    assert views[0].startswith('Request pretty { "model": "openai/gpt-5"')
    assert views[1].startswith('Response pretty { "id": "chatcmpl-1"')
    assert not texts(response, "log-no-bodies")


def test_a_streams_events_are_put_together(client, alice):
    log = make_log(make_key(alice), at=START, streamed=True)
    events = (
        "".join(
            f"data: {json.dumps(event)}\n\n"
            for event in (
                {"id": "c1", "choices": [{"index": 0, "delta": {"role": "assistant"}}]},
                {"id": "c1", "choices": [{"index": 0, "delta": {"content": "Bon"}}]},
                {
                    "id": "c1",
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"content": "jour"},
                            "finish_reason": "stop",
                        }
                    ],
                },
            )
        )
        + "data: [DONE]\n\n"
    )
    kept(log, {"messages": [{"role": "user", "content": "Say hello"}]}, events)
    client.force_login(alice)
    response = client.get(reverse("console:log", args=[log.id]))
    assert texts(response, "log-message") == [
        "User Say hello",
        "Assistant answer · stop Bonjour",
    ]
    assert "Response (stream events put together)" in texts(response, "log-json")[1]
    # The raw view is the events as they went by.
    assert "data: [DONE]" in response.content.decode()


def test_bodies_nested_too_deep_for_python_are_shown_as_their_text(client, alice):
    log = make_log(make_key(alice), at=START, streamed=True)
    deep = "[" * 1000 + "]" * 1000  # orjson reads it, Python's json does not
    events = (
        f"data: {deep}\n\n"
        + 'data: {"choices": [{"index": 0, "delta": {"content": "Hi", '
        + '"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": "'
        + "[" * 2000
        + '"}}]}}]}\n\n'
    )
    kept(log, {"messages": [{"role": "user", "content": "x"}], "deep": 1}, events)
    RequestBody.objects.filter(request_id=log.id).update(
        request=zlib.compress(f'{{"messages": {deep}}}'.encode())
    )
    client.force_login(alice)
    response = client.get(reverse("console:log", args=[log.id]))
    assert response.status_code == 200
    views = texts(response, "log-json")
    assert views[0].startswith('Request pretty {"messages": [[[[')
    # The stream's other events are put together; its arguments as they came.
    [answer] = texts(response, "log-message")
    assert answer.startswith("Assistant answer Hi")
    assert texts(response, "log-tool-call") == ["tool call f " + "[" * 2000]


def test_without_kept_bodies_the_detail_says_so(client, alice, bob):
    keeping(alice.account.pk)
    keeping(bob.account.pk)
    log = make_log(make_key(alice), at=START)
    # Bodies of another account under this id are not alice's.
    RequestBody.objects.create(
        request_id=log.id,
        account=bob.account,
        created_at=log.created_at,
        expires_at=timezone.now() + timedelta(days=7),
        request=zlib.compress(b'{"messages": [{"role": "user", "content": "bob"}]}'),
        response=zlib.compress(b"{}"),
    )
    client.force_login(alice)
    response = client.get(reverse("console:log", args=[log.id]))
    assert texts(response, "log-no-bodies")
    assert not texts(response, "log-message")


def test_the_transaction_history_links_its_csv(client, alice):
    client.force_login(alice)
    response = client.get(reverse("console:payg"))
    assert f'href="{reverse("api-transactions-csv")}"' in response.content.decode()
    assert texts(response, "transactions-csv") == ["Download CSV"]


def test_bodies_are_shown_only_while_the_switch_is_on(client, alice):
    log = make_log(make_key(alice), at=START)
    kept(log, {"messages": [{"role": "user", "content": "secret plans"}]}, {})
    client.force_login(alice)
    url = reverse("console:log", args=[log.id])
    assert texts(client.get(url), "log-message") == ["User secret plans"]
    # Turned off: gone at once for the customer, before the purge has run.
    BodyRetention.objects.filter(account=alice.account).update(enabled=False)
    response = client.get(url)
    assert texts(response, "log-no-bodies")
    assert "secret plans" not in response.content.decode()
    assert RequestBody.objects.filter(request_id=log.id).exists()
