"""The seed's snippet, against a real upstream process, through the platform
process, with the official openai SDK: answers, errors, and exact billing."""

from __future__ import annotations

import time

import openai
import pytest

from apikeys.models import ApiKey
from apikeys.services import key_create, key_delete, key_update
from billing.ledger.reconciliation import ledger_check
from billing.ledger.selectors import balance_get, transactions_list
from billing.models import EntryKind, Hold, HoldState, LedgerEntry
from money import ceil_div, usd_to_nanos
from proxy.models import RequestLog
from tests.support.proxy import nothing_held
from tests.support.world import grant

pytestmark = pytest.mark.django_db(transaction=True)

INPUT, CACHED, OUTPUT = 1_250_000_000, 125_000_000, 10_000_000_000


def cost(prompt=0, completion=0, cached=0):
    return ceil_div(
        (prompt - cached) * INPUT + cached * CACHED + completion * OUTPUT, 10**6
    )


def ask(client, directive: str, **options):
    return client.chat.completions.create(
        model="fake/gpt",
        messages=[
            {"role": "user", "content": f"What is the meaning of life? {directive}"}
        ],
        **options,
    )


def test_seed_snippet_answers_and_bills_exactly(alice, alice_client, upstream):
    completion = ask(alice_client, "#upstream prompt_tokens=120 completion_tokens=30")
    assert completion.choices[0].message.content.startswith("tok tok")
    assert completion.usage.prompt_tokens == 120
    assert completion.usage.completion_tokens == 30

    expected = cost(prompt=120, completion=30)
    assert expected == 450_000  # 120 × $1.25/M + 30 × $10/M = $0.00045
    balance = balance_get(account=alice.account)
    assert balance.total_nanos == usd_to_nanos("50") - expected
    # The worker's lease of credits is given back once it is idle.
    assert balance.held_nanos > 0
    assert nothing_held(alice.account)

    log = RequestLog.objects.get()
    assert (log.status, log.model, log.provider, log.streamed) == (
        200,
        "fake/gpt",
        "fake",
        False,
    )
    assert (log.prompt_tokens, log.completion_tokens, log.cost_nanos) == (
        120,
        30,
        expected,
    )
    assert log.cost_bonus_nanos == expected and log.cost_topup_nanos == 0
    assert not log.usage_estimated

    sent = upstream.requests()[-1]
    assert sent["body"]["model"] == "gpt-upstream"
    assert sent["headers"]["authorization"] == "Bearer sk-upstream-test"
    assert ledger_check() == []


def test_streamed_and_non_streamed_calls_with_the_same_usage_cost_the_same(
    alice, alice_client
):
    directive = "#upstream prompt_tokens=77 completion_tokens=13"
    ask(alice_client, directive)
    chunks = list(ask(alice_client, directive, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "tok" + " tok" * 12
    # The client did not ask for usage: it gets no usage chunk.
    assert all(c.choices for c in chunks)
    with_usage = list(
        ask(
            alice_client, directive, stream=True, stream_options={"include_usage": True}
        )
    )
    assert with_usage[-1].choices == []
    assert with_usage[-1].usage.completion_tokens == 13

    costs = list(
        RequestLog.objects.order_by("created_at").values_list("cost_nanos", "streamed")
    )
    assert costs == [(cost(77, 13), False), (cost(77, 13), True), (cost(77, 13), True)]
    assert balance_get(account=alice.account).total_nanos == usd_to_nanos(
        "50"
    ) - 3 * cost(77, 13)


def test_upstream_is_always_asked_for_usage_when_streaming(alice_client, upstream):
    list(ask(alice_client, "#upstream completion_tokens=2", stream=True))
    assert upstream.requests()[-1]["body"]["stream_options"] == {"include_usage": True}


def test_cached_and_reasoning_tokens_are_priced_by_their_own_prices(
    alice, alice_client
):
    answer = ask(
        alice_client,
        "#upstream prompt_tokens=1000 cached_tokens=800 completion_tokens=10 "
        "reasoning_tokens=40",
    )
    assert answer.usage.completion_tokens == 50
    expected = cost(prompt=1000, cached=800, completion=50)
    assert expected == ceil_div(200 * INPUT + 800 * CACHED + 50 * OUTPUT, 10**6)
    log = RequestLog.objects.get()
    assert (log.cached_tokens, log.reasoning_tokens, log.cost_nanos) == (
        800,
        40,
        expected,
    )


def test_a_sequence_of_calls_agrees_everywhere_to_the_nano(
    alice, alice_key, client_for
):
    client = client_for(alice_key.secret)
    other = key_create(account=alice.account, name="batch-jobs")
    other_client = client_for(other.secret)
    spent = 0
    for i in range(5):
        ask(client, f"#upstream prompt_tokens={100 + i} completion_tokens={7 * i + 1}")
        spent += cost(100 + i, 7 * i + 1)
    for i in range(3):
        list(
            ask(
                other_client,
                f"#upstream prompt_tokens={50 + i} completion_tokens={i + 2}",
                stream=True,
            )
        )
        spent += cost(50 + i, i + 2)
    balance = balance_get(account=alice.account)
    assert balance.total_nanos == usd_to_nanos("50") - spent
    assert nothing_held(alice.account)
    logs = RequestLog.objects.all()
    assert sum(log.cost_nanos for log in logs) == spent
    assert sum(log.cost_bonus_nanos + log.cost_topup_nanos for log in logs) == spent
    usage_entries = LedgerEntry.objects.filter(kind=EntryKind.USAGE)
    assert -sum(e.amount_nanos for e in usage_entries) == spent
    keys = {k.pk: k.used_nanos for k in ApiKey.objects.all()}
    assert keys[alice_key.api_key.pk] + keys[other.api_key.pk] == spent
    assert keys[other.api_key.pk] == sum(cost(50 + i, i + 2) for i in range(3))
    usage_day = next(
        t for t in transactions_list(account=alice.account)[:10] if t.kind == "usage"
    )
    assert usage_day.amount_nanos == -spent
    assert ledger_check() == []


@pytest.mark.parametrize(
    ("make_secret", "error", "status"),
    [
        (lambda key: "sk-ap-v1-not-a-real-key", openai.AuthenticationError, 401),
        (
            lambda key: key.secret[:-1] + ("A" if key.secret[-1] != "A" else "B"),
            openai.AuthenticationError,
            401,
        ),
        (lambda key: "", openai.AuthenticationError, 401),
    ],
)
def test_bad_keys_are_401(alice_key, client_for, make_secret, error, status):
    with pytest.raises(error) as raised:
        ask(client_for(make_secret(alice_key) or "x"), "")
    assert raised.value.status_code == status
    assert raised.value.body["code"] == "invalid_api_key"
    assert not RequestLog.objects.exists()


def test_a_management_key_cannot_call_v1(alice, catalog, client_for):
    management = key_create(account=alice.account, name="ops", kind="management")
    with pytest.raises(openai.AuthenticationError):
        ask(client_for(management.secret), "")


def test_disabled_and_deleted_keys_are_refused_within_5_seconds(
    alice_key, alice_client
):
    ask(alice_client, "")  # cached as enabled now
    key_update(api_key=alice_key.api_key, status="disabled")
    deadline = time.monotonic() + 5
    while True:
        try:
            ask(alice_client, "")
        except openai.PermissionDeniedError as error:
            assert error.body["code"] == "api_key_disabled"
            break
        assert time.monotonic() < deadline, "the disabled key still works after 5 s"
        time.sleep(0.2)
    key_update(api_key=alice_key.api_key, status="enabled")
    key_delete(api_key=ApiKey.objects.get(pk=alice_key.api_key.pk))
    deadline = time.monotonic() + 5
    while True:
        try:
            ask(alice_client, "")
        except openai.AuthenticationError:
            break
        except openai.PermissionDeniedError:
            pass  # still cached as disabled
        assert time.monotonic() < deadline, "the deleted key still works after 5 s"
        time.sleep(0.2)


def test_unknown_model_is_404(alice_client):
    with pytest.raises(openai.NotFoundError) as raised:
        alice_client.chat.completions.create(
            model="fake/nope", messages=[{"role": "user", "content": "hi"}]
        )
    assert raised.value.body["code"] == "model_not_found"
    assert raised.value.body["param"] == "model"
    assert RequestLog.objects.get().status == 404


def test_bad_requests_are_400_naming_the_parameter(alice_client):
    with pytest.raises(openai.BadRequestError) as raised:
        alice_client.chat.completions.create(
            model="fake/gpt", messages=[{"role": "user", "content": "x"}], max_tokens=0
        )
    assert raised.value.body["param"] == "max_tokens"
    with pytest.raises(openai.BadRequestError) as raised:
        alice_client.embeddings.create(model="fake/gpt", input="x")
    assert "chat model" in raised.value.body["message"]


def test_insufficient_credits_is_402_and_says_what_the_balance_affords(
    bob, catalog, client_for
):
    grant(bob, "0.01", reason="tiny")
    key = key_create(account=bob.account, name="bob")
    client = client_for(key.secret)
    with pytest.raises(openai.APIStatusError) as raised:
        ask(client, "", max_tokens=8_000)  # up to $0.08 of output
    assert raised.value.status_code == 402
    body = raised.value.body
    assert body["code"] == "insufficient_credits"
    assert "affords about" in body["message"]
    assert "$0.010000 available" in body["message"]
    # A smaller allowance fits.
    ask(client, "#upstream completion_tokens=5", max_tokens=500)
    assert nothing_held(bob.account)
    statuses = sorted(RequestLog.objects.values_list("status", flat=True))
    assert statuses == [200, 402]


def test_key_credit_limit_is_402_and_resets_with_its_period(
    alice, alice_key, client_for
):
    key_update(
        api_key=alice_key.api_key,
        limit_nanos=usd_to_nanos("0.001"),
        limit_reset="daily",
    )
    client = client_for(alice_key.secret)
    ask(client, "#upstream prompt_tokens=10 completion_tokens=40", max_tokens=60)
    with pytest.raises(openai.APIStatusError) as raised:
        ask(client, "#upstream completion_tokens=40", max_tokens=60)
    assert raised.value.status_code == 402
    assert raised.value.body["code"] == "key_limit_reached"
    # The next day, the limit applies afresh.
    ApiKey.objects.filter(pk=alice_key.api_key.pk).update(
        period_start="2000-01-01T00:00:00Z"
    )
    ask(client, "#upstream prompt_tokens=10 completion_tokens=40", max_tokens=60)
    key = ApiKey.objects.get(pk=alice_key.api_key.pk)
    assert key.held_nanos == 0
    assert key.period_used_nanos == cost(10, 40)
    assert key.used_nanos == 2 * cost(10, 40)


def test_upstream_failure_before_output_is_not_charged(alice, alice_client):
    with pytest.raises(openai.InternalServerError) as raised:
        ask(alice_client, "#upstream status=500")
    assert raised.value.status_code == 502
    with pytest.raises(openai.APIStatusError) as raised:
        ask(alice_client, "#upstream status=503", stream=True)
    assert raised.value.status_code == 502
    assert balance_get(account=alice.account).total_nanos == usd_to_nanos("50")
    assert nothing_held(alice.account)
    assert set(RequestLog.objects.values_list("status", "cost_nanos")) == {(502, 0)}


def test_upstream_that_times_out_is_504_and_not_charged(alice, alice_client):
    with pytest.raises(openai.APIStatusError) as raised:
        ask(alice_client, "#upstream hang=1")
    assert raised.value.status_code == 504
    assert balance_get(account=alice.account).total_nanos == usd_to_nanos("50")
    assert nothing_held(alice.account)
    assert not Hold.objects.filter(state=HoldState.ACTIVE).exists()


def test_a_stream_that_breaks_midway_bills_what_was_delivered(alice, alice_client):
    stream = ask(alice_client, "#upstream prompt_tokens=10 break_after=6", stream=True)
    delivered = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            if chunk.choices:
                delivered.append(chunk.choices[0].delta.content or "")
    assert "".join(delivered) == "tok" + " tok" * 5
    log = RequestLog.objects.get()
    assert log.usage_estimated and log.status == 502
    assert log.completion_tokens == 6
    # The prompt is counted offline too: the message's own tokens plus overhead.
    assert log.cost_nanos == cost(log.prompt_tokens, 6)
    assert nothing_held(alice.account)
    assert ledger_check() == []


def test_embeddings_are_billed_as_input(alice, alice_client):
    # 300 tokens need at least 300 bytes of input (more would be over-reported).
    text = "#upstream prompt_tokens=300 " + "three hundred tokens " * 15
    result = alice_client.embeddings.create(model="fake/embed", input=[text, "b"])
    assert len(result.data) == 2
    log = RequestLog.objects.get()
    assert (log.cost_nanos, log.over_reported) == (cost(prompt=300), False)


def test_models_lists_the_catalog_with_prices(alice_client):
    models = {m.id: m for m in alice_client.models.list().data}
    assert set(models) == {"fake/gpt", "fake/embed"}
    gpt = models["fake/gpt"].model_dump()
    assert gpt["owned_by"] == "fake"
    assert gpt["context_length"] == 200_000
    assert gpt["pricing"]["input"] == "1.25"
    assert gpt["pricing"]["output"] == "10"
