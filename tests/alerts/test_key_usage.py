"""Key usage alerts: once per key and period when its use reaches the account's
share of its credit limit, again in the next period; through the real proxy
too."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import openai
import pytest
from django.core import mail
from django.db import connection

from alerts.models import Alert, AlertKind
from alerts.services import alert_settings_save
from alerts.tasks import alerts_scan
from apikeys.models import KeyStatus, LimitReset
from apikeys.services import key_create, key_update
from money import usd_to_nanos
from tests.support.alerts import emails_to, key_period_begins, spend
from tests.support.platform import PlatformProcess, database_url
from tests.support.world import grant

DAY = datetime(2031, 5, 6, tzinfo=UTC)


def limited_key(user, limit: str = "10", reset: str = LimitReset.DAILY, name="app"):
    return key_create(
        account=user.account,
        name=name,
        limit_nanos=usd_to_nanos(limit),
        limit_reset=reset,
    ).api_key


def test_a_key_past_the_share_of_its_daily_limit_alerts_once_per_day(alice):
    key = limited_key(alice, "10")
    key_period_begins(key, DAY)
    alerts_scan(now=DAY + timedelta(hours=1))
    spend(alice.account, "7.99", key=key)
    assert alerts_scan(now=DAY + timedelta(hours=2)) == 0  # 79.9%
    spend(alice.account, "0.01", key=key)
    assert alerts_scan(now=DAY + timedelta(hours=3)) == 1  # 80%
    (email,) = mail.outbox
    assert email.to == ["alice@example.com"]
    assert email.subject == "AGIPower: API key “app” has used 80% of its limit"
    assert (
        f"Your API key “app” ({key.prefix}) has used $8.00 of its daily credit "
        "limit of $10.00 this period (since 2031-05-06 00:00 UTC): 80%, past the "
        "80% you asked to hear about." in " ".join(email.body.split())
    )
    assert f"http://127.0.0.1:8000/console/keys/{key.pk}" in email.body
    alert = Alert.objects.get()
    assert (alert.kind, alert.api_key_id, alert.key_period_start) == (
        AlertKind.KEY_USAGE,
        key.pk,
        DAY,
    )
    assert (alert.key_used_nanos, alert.key_limit_nanos, alert.key_percent) == (
        usd_to_nanos("8"),
        usd_to_nanos("10"),
        80,
    )

    # More use the same day: nothing more.
    spend(alice.account, "1.5", key=key)
    assert alerts_scan(now=DAY + timedelta(hours=4)) == 0
    # The next day the use of yesterday does not count...
    next_day = DAY + timedelta(days=1)
    spend(alice.account, "0.01")  # another key, or none: the account moved
    assert alerts_scan(now=next_day + timedelta(hours=1)) == 0
    # ...and the new day's period alerts again.
    key_period_begins(key, next_day)
    spend(alice.account, "9", key=key)
    assert alerts_scan(now=next_day + timedelta(hours=2)) == 1
    assert len(emails_to("alice@example.com")) == 2
    assert list(
        Alert.objects.order_by("id").values_list("key_period_start", flat=True)
    ) == [DAY, next_day]


def test_the_share_is_the_accounts_choice(alice):
    key = limited_key(alice, "10", LimitReset.MONTHLY)
    key_period_begins(key, DAY.replace(day=1))
    alert_settings_save(account=alice.account, key_usage_percent=50)
    alerts_scan(now=DAY)
    spend(alice.account, "4.99", key=key)
    assert alerts_scan(now=DAY) == 0
    spend(alice.account, "0.01", key=key)
    assert alerts_scan(now=DAY) == 1
    assert "past the 50%" in mail.outbox[0].body
    assert "its monthly credit limit of $10.00" in " ".join(mail.outbox[0].body.split())


def test_turned_off_no_key_alert_is_sent(alice):
    key = limited_key(alice, "1")
    key_period_begins(key, DAY)
    alert_settings_save(account=alice.account, key_usage_enabled=False)
    alerts_scan(now=DAY)
    spend(alice.account, "1", key=key)
    assert alerts_scan(now=DAY) == 0
    assert mail.outbox == []


def test_keys_without_a_limit_or_disabled_or_of_others_say_nothing(alice, bob):
    grant(bob, "50")
    unlimited = key_create(account=alice.account, name="free").api_key
    disabled = limited_key(alice, "1", name="off")
    key_period_begins(disabled, DAY)
    key_update(api_key=disabled, status=KeyStatus.DISABLED, actor=alice)
    bobs = limited_key(bob, "100", name="bob's")
    key_period_begins(bobs, DAY)
    alerts_scan(now=DAY)
    spend(alice.account, "5", key=unlimited)
    spend(alice.account, "1", key=disabled)
    spend(bob.account, "1", key=bobs)  # 1% of bob's limit
    assert alerts_scan(now=DAY) == 0
    assert mail.outbox == []


def test_a_limit_that_never_resets_alerts_once_and_again_for_a_new_limit(alice):
    key = limited_key(alice, "2", LimitReset.NONE)
    alerts_scan(now=DAY)
    spend(alice.account, "1.8", key=key)
    assert alerts_scan(now=DAY) == 1
    assert "its credit limit of $2.00:" in " ".join(mail.outbox[0].body.split())
    spend(alice.account, "0.1", key=key)
    assert alerts_scan(now=DAY + timedelta(days=40)) == 0
    # A new limit is a new budget: 80% of it is news.
    key_update(api_key=key, limit_nanos=usd_to_nanos("3"), actor=alice)
    spend(alice.account, "0.5", key=key)  # $2.40 of $3
    assert alerts_scan(now=DAY + timedelta(days=41)) == 1
    assert len(mail.outbox) == 2


@pytest.mark.django_db(transaction=True)
def test_a_key_spending_through_the_proxy_is_alerted_once(alice, catalog, upstream):
    key = key_create(
        account=alice.account,
        name="production",
        limit_nanos=usd_to_nanos("0.05"),
        limit_reset=LimitReset.DAILY,
    )
    alerts_scan()
    with PlatformProcess(
        database_url=database_url(connection.settings_dict),
        env={"FAKE_UPSTREAM_KEY": "sk-upstream-test"},
    ) as platform:
        client = openai.OpenAI(
            base_url=platform.base_url, api_key=key.secret, max_retries=0
        )

        def ask(completion_tokens: int) -> None:
            client.chat.completions.create(
                model="fake/gpt",
                messages=[
                    {
                        "role": "user",
                        "content": "#upstream prompt_tokens=10 "
                        f"completion_tokens={completion_tokens}",
                    }
                ],
                # The key holds this much per request: within what is left.
                max_tokens=completion_tokens,
            )

        ask(1000)  # $0.01 of output: 20% of the limit
        assert _settled(key.api_key, usd_to_nanos("0.01"))
        assert alerts_scan() == 0
        ask(2000)  # $0.02 more: ~60%
        ask(1000)  # ~80%
        assert _settled(key.api_key, usd_to_nanos("0.04"))
        assert alerts_scan() == 1
        assert alerts_scan() == 0
    (email,) = mail.outbox
    assert "“production”" in email.subject
    key.api_key.refresh_from_db()
    used = key.api_key.period_used_nanos
    assert Alert.objects.get().key_used_nanos == used >= usd_to_nanos("0.04")


def _settled(key, at_least: int, timeout: float = 10.0) -> bool:
    """Wait until the key's settled use reaches ``at_least`` (settling is
    batched after the answer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        key.refresh_from_db()
        if key.period_used_nanos >= at_least:
            return True
        time.sleep(0.05)
    return False
