"""The nightly check that the hourly rollups equal the request logs
(proxy/reconciliation.py): usage written by the real proxy passes; a rollup
changed, missing or without logs is reported and recorded where operators see
the reconciliation runs; hours whose logs retention deleted are left out. The
daily rollups are checked against the hourly ones the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import F

from apikeys.services import key_create
from billing.models import ReconciliationRun
from proxy import tasks
from proxy.models import RequestLog, UsageRollup, UsageRollupDay
from proxy.reconciliation import rollups_check, rollups_reconcile
from proxy.rollups import usage_fold
from tests.support.usage import usage_commit, usage_item
from tests.support.world import grant


def ask(client, directive: str, **options):
    return client.chat.completions.create(
        model="fake/gpt",
        messages=[{"role": "user", "content": f"Hello {directive}"}],
        **options,
    )


@pytest.fixture
def traffic(transactional_db, alice, alice_client, client_for, bob):
    """Calls of two keys of alice (JSON and streamed, cached and reasoning
    tokens, an upstream error) and one of bob."""
    second = client_for(key_create(account=alice.account, name="second").secret)
    ask(
        alice_client, "#upstream prompt_tokens=100 cached_tokens=40 completion_tokens=7"
    )
    list(
        ask(
            alice_client,
            "#upstream completion_tokens=3 reasoning_tokens=2",
            stream=True,
        )
    )
    ask(second, "#upstream prompt_tokens=20 completion_tokens=2")
    with pytest.raises(Exception):  # noqa: B017 - any SDK error of a 500
        ask(second, "#upstream status=500")
    grant(bob, "5")
    ask(client_for(key_create(account=bob.account, name="bob").secret), "#upstream")
    assert RequestLog.objects.count() == 5
    assert RequestLog.objects.filter(status__gte=400).count() == 1


def test_usage_of_the_real_proxy_passes_and_the_run_is_recorded(traffic):
    assert tasks.rollups_reconcile.delay().get() == 0
    recorded = ReconciliationRun.objects.get()
    assert (recorded.drift_count, recorded.accounts_checked) == (0, 2)
    assert recorded.finished_at is not None


def test_a_changed_missing_or_stray_rollup_is_reported(traffic, alice, ops, client):
    assert rollups_check() == ([], 2)  # the batches' deltas, not folded yet
    assert usage_fold() == 5
    assert rollups_check() == ([], 2)
    changed = UsageRollup.objects.filter(account=alice.account).order_by("id").first()
    UsageRollup.objects.filter(pk=changed.pk).update(cost_nanos=changed.cost_nanos + 1)
    missing = UsageRollup.objects.filter(account=alice.account).order_by("id").last()
    missing.delete()
    UsageRollup.objects.create(
        account=alice.account,
        hour=changed.hour,
        api_key=changed.api_key,
        model="fake/other",
        provider="fake",
        requests=2,
    )

    run = rollups_reconcile()

    assert run.drift_count == 3
    details = sorted(drift["detail"] for drift in run.drifts)
    assert {drift["check"] for drift in run.drifts} == {"rollups_match_logs"}
    assert {drift["account_id"] for drift in run.drifts} == {alice.account.pk}
    hour = f"{changed.hour:%Y-%m-%d %H}:00 UTC"
    assert (
        f"key {changed.api_key_id}, fake/gpt via fake, hour {hour}: cost_nanos logs "
        f"{changed.cost_nanos} rollup {changed.cost_nanos + 1}"
    ) in details
    assert (
        f"key {changed.api_key_id}, fake/other via fake, hour {hour}: a rollup of 2 "
        "requests, no logs"
    ) in details
    requests = f"{missing.requests} request{'' if missing.requests == 1 else 's'}"
    assert (
        f"key {missing.api_key_id}, fake/gpt via fake, hour "
        f"{missing.hour:%Y-%m-%d %H}:00 UTC: logs of {requests}, no rollup"
    ) in details
    # Operators read it on the run's page in admin.
    client.force_login(ops)
    page = client.get(f"/admin/billing/reconciliationrun/{run.pk}/change/")
    assert page.status_code == 200
    assert b"rollups_match_logs" in page.content
    assert b"a rollup of 2 requests, no logs" in page.content


def test_hours_past_retention_are_not_checked(alice, settings):
    settings.REQUEST_LOG_RETENTION_DAYS = 30
    assert rollups_check() == ([], 0)  # nothing to compare
    key = key_create(account=alice.account, name="old")
    now = datetime.now(UTC)
    inside = now - timedelta(days=29)
    outside = now - timedelta(days=31)
    usage_commit(
        alice.account.pk,
        [
            usage_item(key, at=outside, prompt_tokens=10),
            usage_item(key, at=inside, prompt_tokens=10),
        ],
    )
    assert rollups_check() == ([], 1)
    assert usage_fold() == 2
    assert rollups_check() == ([], 1)

    # A log past retention, not deleted yet: its hour is not whole any more
    # once retention begins, and is not checked.
    old = UsageRollup.objects.get(hour__lt=inside - timedelta(days=1))
    UsageRollup.objects.filter(pk=old.pk).update(requests=5)
    assert rollups_check() == ([], 1)
    # Inside: reported.
    UsageRollup.objects.exclude(pk=old.pk).update(prompt_tokens=11)
    drifts, _ = rollups_check()
    assert [d.detail.rpartition(": ")[2] for d in drifts] == [
        "prompt_tokens logs 10 rollup 11"
    ]


def test_hours_before_the_oldest_log_kept_are_not_checked(alice, settings):
    """After the retention days were raised, the hours between the old and the
    new cutoff have rollups whose logs the shorter setting deleted."""
    settings.REQUEST_LOG_RETENTION_DAYS = 90
    key = key_create(account=alice.account, name="raised")
    now = datetime.now(UTC)
    usage_commit(alice.account.pk, [usage_item(key, at=now, prompt_tokens=10)])
    hour = now.replace(minute=0, second=0, microsecond=0)
    for at, model in ((hour - timedelta(days=50), "fake/gone"), (hour, "fake/stray")):
        UsageRollup.objects.create(
            account=alice.account,
            hour=at,
            api_key=key.api_key,
            model=model,
            provider="fake",
            requests=1,
        )
    drifts, _ = rollups_check()
    assert [d.detail.partition(", ")[2].split(" via")[0] for d in drifts] == [
        "fake/stray"
    ]


def test_a_day_that_is_not_the_sum_of_its_hours_is_reported(alice, client, ops):
    """The daily rollups that long ranges read are checked against the hourly
    ones, all days: a day row changed, missing or without hours."""
    key = key_create(account=alice.account, name="days")
    # Noon (UTC) of today: each day's two hours, 5 hours apart, fall in it.
    now = datetime.now(UTC).replace(hour=12, minute=30)
    usage_commit(
        alice.account.pk,
        [
            usage_item(key, at=now - timedelta(days=d, hours=h), prompt_tokens=10)
            for d in (1, 2, 200)
            for h in (0, 5)
        ],
    )
    assert usage_fold() == 6
    assert rollups_check() == ([], 1)
    days = UsageRollupDay.objects.filter(account=alice.account).order_by("day")
    oldest, middle, newest = days
    UsageRollupDay.objects.filter(pk=oldest.pk).update(cost_nanos=F("cost_nanos") + 1)
    UsageRollupDay.objects.filter(pk=middle.pk).delete()
    UsageRollupDay.objects.create(
        account=alice.account,
        day=newest.day + timedelta(days=3),
        api_key=key.api_key,
        model="fake/gpt",
        provider="fake",
        requests=3,
    )

    run = rollups_reconcile()

    assert run.drift_count == 3
    assert {drift["check"] for drift in run.drifts} == {"days_match_hours"}
    where = f"key {key.api_key.pk}, fake/gpt via fake, day"
    assert sorted(drift["detail"] for drift in run.drifts) == sorted(
        [
            f"{where} {oldest.day} UTC: cost_nanos hours {oldest.cost_nanos} "
            f"day {oldest.cost_nanos + 1}",
            f"{where} {middle.day} UTC: hours of {middle.requests} requests, no day",
            f"{where} {newest.day + timedelta(days=3)} UTC: a day of 3 requests, "
            "no hours",
        ]
    )
    assert {drift["account_id"] for drift in run.drifts} == {alice.account.pk}
    assert run.accounts_checked == 1
