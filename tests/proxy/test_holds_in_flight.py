"""Holds under concurrency, clients that go away, and a worker that dies."""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import openai
import pytest
from django.db import connection
from django.utils import timezone

from apikeys.services import key_create, key_update
from billing.ledger.holds import holds_sweep_stale
from billing.ledger.reconciliation import ledger_check
from billing.ledger.selectors import balance_get
from billing.models import Hold, HoldState
from money import usd_to_nanos
from proxy.models import RequestLog
from tests.support.platform import PlatformProcess
from tests.support.proxy import PRICES, nothing_held
from tests.support.world import grant

pytestmark = pytest.mark.django_db(transaction=True)


def eventually(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def funded_key(user, usd: str):
    grant(user, usd)
    return key_create(account=user.account, name="load")


def test_concurrent_requests_never_spend_more_than_the_balance(
    bob, catalog, client_for
):
    key = funded_key(bob, "0.10")
    client = client_for(key.secret, timeout=30)
    # Each request may cost up to ~$0.0102 (1000 output tokens at $10/M), so the
    # 50 together could cost ~$0.51: only some fit at any one time.
    peak_held = 0
    stop = threading.Event()

    def watch_held():
        nonlocal peak_held
        try:
            while not stop.is_set():
                peak_held = max(peak_held, balance_get(account=bob.account).held_nanos)
                time.sleep(0.01)
        finally:
            connection.close()  # this thread's own connection

    watcher = threading.Thread(target=watch_held)
    watcher.start()

    def call(i):
        try:
            client.chat.completions.create(
                model="fake/gpt",
                messages=[
                    {
                        "role": "user",
                        "content": "#upstream latency_ms=400 completion_tokens=900 "
                        "prompt_tokens=40",
                    }
                ],
                max_tokens=1000,
            )
            return 200
        except openai.APIStatusError as error:
            return error.status_code

    try:
        with ThreadPoolExecutor(max_workers=50) as pool:
            statuses = list(pool.map(call, range(50)))
    finally:
        stop.set()
        watcher.join()

    assert set(statuses) <= {200, 402}
    assert statuses.count(402) > 0 and statuses.count(200) > 0
    assert nothing_held(bob.account)
    balance = balance_get(account=bob.account)
    assert balance.total_nanos >= 0
    assert peak_held <= usd_to_nanos("0.10")
    spent = usd_to_nanos("0.10") - balance.total_nanos
    logs = RequestLog.objects.filter(account=bob.account)
    assert sum(log.cost_nanos for log in logs) == spent
    assert logs.filter(status=200).count() == statuses.count(200)
    assert logs.filter(status=402).count() == statuses.count(402)
    assert ledger_check() == []


def test_a_json_client_that_goes_away_leaves_no_hold_and_pays_nothing(
    alice, alice_key, client_for, upstream
):
    upstream.reset_stats()
    client = client_for(alice_key.secret, timeout=0.5)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(
            model="fake/gpt",
            messages=[{"role": "user", "content": "#upstream latency_ms=3000"}],
        )
    log = eventually(lambda: RequestLog.objects.first())
    assert (log.status, log.cost_nanos) == (499, 0)
    assert nothing_held(alice.account)
    assert not Hold.objects.filter(state=HoldState.ACTIVE).exists()
    assert balance_get(account=alice.account).total_nanos == usd_to_nanos("50")
    # Upstream was closed at once, not left to finish.
    eventually(lambda: upstream.stats()["aborted_before_first_byte"] >= 1, timeout=3)


def test_an_sse_client_that_goes_away_pays_for_what_it_received(
    alice, alice_key, client_for, upstream
):
    upstream.reset_stats()
    client = client_for(alice_key.secret)
    stream = client.chat.completions.create(
        model="fake/gpt",
        messages=[
            {
                "role": "user",
                "content": "#upstream completion_tokens=200 chunk_delay_ms=50",
            }
        ],
        stream=True,
    )
    received = []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            received.append(chunk.choices[0].delta.content)
        if len(received) == 5:
            break
    stream.close()

    log = eventually(lambda: RequestLog.objects.first())
    assert log.status == 499 and log.usage_estimated and log.streamed
    # Counted offline: what was sent before the platform saw the client go
    # (a few chunks more than read), never the 200 upstream would have made.
    assert 5 <= log.completion_tokens < 60
    input_nanos = usd_to_nanos(PRICES["input"])
    output_nanos = usd_to_nanos(PRICES["output"])
    expected = -(
        -(log.prompt_tokens * input_nanos + log.completion_tokens * output_nanos)
        // 10**6
    )
    assert log.cost_nanos == expected
    assert nothing_held(alice.account)
    balance = balance_get(account=alice.account)
    assert balance.total_nanos == usd_to_nanos("50") - expected
    eventually(lambda: upstream.stats()["streams_aborted_by_client"] >= 1, timeout=3)
    assert ledger_check() == []


def test_every_answer_a_client_received_whole_is_already_billed(alice, alice_client):
    stream = alice_client.chat.completions.create(
        model="fake/gpt",
        messages=[{"role": "user", "content": "#upstream completion_tokens=3"}],
        stream=True,
    )
    list(stream)  # read up to [DONE]
    # No waiting: [DONE] is sent only after the settlement committed.
    log = RequestLog.objects.get()
    assert log.status == 200 and log.cost_nanos > 0
    assert (
        balance_get(account=alice.account).total_nanos
        == usd_to_nanos("50") - log.cost_nanos
    )


def test_a_killed_worker_leaves_a_hold_that_the_sweep_releases(
    alice, alice_key, platform
):
    with PlatformProcess(
        database_url=platform.database_url,
        env={"FAKE_UPSTREAM_KEY": "sk-upstream-test"},
    ) as doomed:
        client = openai.OpenAI(
            base_url=doomed.base_url,
            api_key=alice_key.secret,
            max_retries=0,
            timeout=10,
        )
        outcome = {}

        def call():
            try:
                client.chat.completions.create(
                    model="fake/gpt",
                    messages=[{"role": "user", "content": "#upstream latency_ms=5000"}],
                )
            except openai.APIError as error:
                outcome["error"] = error

        caller = threading.Thread(target=call)
        caller.start()
        hold = eventually(lambda: Hold.objects.filter(state=HoldState.ACTIVE).first())
        doomed.kill()
        caller.join()
    assert isinstance(outcome["error"], openai.APIConnectionError)
    assert balance_get(account=alice.account).held_nanos == hold.amount_nanos
    assert ledger_check() == []

    assert holds_sweep_stale() == 0  # not stale yet
    released = holds_sweep_stale(now=hold.expires_at + timedelta(seconds=1))
    assert released == 1
    assert Hold.objects.get(pk=hold.pk).state == HoldState.EXPIRED
    balance = balance_get(account=alice.account)
    assert (balance.held_nanos, balance.total_nanos) == (0, usd_to_nanos("50"))
    assert holds_sweep_stale(now=timezone.now() + timedelta(days=1)) == 0
    assert ledger_check() == []


def test_a_client_that_leaves_after_the_last_token_pays_upstream_s_exact_count(
    alice, alice_key, client_for
):
    client = client_for(alice_key.secret)
    stream = client.chat.completions.create(
        model="fake/gpt",
        messages=[
            {
                "role": "user",
                "content": "#upstream prompt_tokens=40 completion_tokens=8 "
                "reasoning_tokens=500 chunk_delay_ms=20",
            }
        ],
        stream=True,
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].finish_reason:
            break  # the whole answer is here; the usage event is not
    stream.close()
    log = eventually(lambda: RequestLog.objects.first())
    # The hidden reasoning tokens are billed: upstream's usage was read after
    # the client left, instead of counting the visible text offline.
    assert not log.usage_estimated
    assert (log.prompt_tokens, log.completion_tokens, log.reasoning_tokens) == (
        40,
        508,
        500,
    )
    input_nanos = usd_to_nanos(PRICES["input"])
    output_nanos = usd_to_nanos(PRICES["output"])
    assert log.cost_nanos == -(-(40 * input_nanos + 508 * output_nanos) // 10**6)
    assert ledger_check() == []


def test_a_key_s_credit_limit_counts_its_holds_in_flight_until_they_are_swept(alice):
    api_key = key_create(account=alice.account, name="limited").api_key
    key_update(api_key=api_key, limit_nanos=usd_to_nanos("1"))

    def hold_many(*amounts, expires):
        items = [
            {
                "hold": str(uuid.uuid4()),
                "api_key": api_key.pk,
                "amount": usd_to_nanos(amount),
                "expires": expires.isoformat(),
                "reference": "req",
            }
            for amount in amounts
        ]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT refusal, available FROM proxy_hold_many(%s, %s::jsonb)",
                [alice.account.pk, json.dumps(items)],
            )
            return cursor.fetchall()

    # The third request would pass the key's $1 with what the first two hold.
    a_worker_died = timezone.now() - timedelta(seconds=1)
    refusals = hold_many("0.4", "0.4", "0.4", expires=a_worker_died)
    assert [refusal for refusal, _ in refusals] == [None, None, "key_limit_reached"]
    assert refusals[2][1] == usd_to_nanos("0.2")
    assert api_key.held_nanos == usd_to_nanos("0.8")
    assert balance_get(account=alice.account).held_nanos == usd_to_nanos("0.8")
    # Each hold names its key, in the proxy's terms; billing does not read it.
    assert set(Hold.objects.values_list("owner", flat=True)) == {api_key.hold_owner}

    # The sweep releases them: the key's limit is whole again, with no key row
    # for billing to mend.
    assert holds_sweep_stale() == 2
    assert api_key.held_nanos == 0
    assert balance_get(account=alice.account).held_nanos == 0
    in_a_minute = timezone.now() + timedelta(minutes=1)
    assert hold_many("1", expires=in_a_minute) == [(None, usd_to_nanos("49"))]
    assert hold_many("0.01", expires=in_a_minute) == [("key_limit_reached", 0)]
    # A balance too short is said first, before the key's limit.
    assert hold_many("49.01", expires=in_a_minute) == [
        ("insufficient_credits", usd_to_nanos("49"))
    ]
    assert ledger_check() == []
