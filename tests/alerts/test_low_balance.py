"""Low-balance alerts: one email per fall below the threshold, quiet while the
balance stays below, again after it has risen back; never for an account that
was never at or above it; sent by the beat task, once even when two scans
overlap."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from accounts.services import user_signup
from alerts.models import Alert, AlertKind
from alerts.services import alert_settings_save
from alerts.tasks import alerts_scan
from money import usd_to_nanos
from tests.support.alerts import emails_to, spend
from tests.support.world import PASSWORD, grant


def test_a_fall_below_the_threshold_sends_one_email(alice):
    assert alerts_scan() == 0  # $50: nothing to say
    spend(alice.account, "47.50")  # $2.50, below the default $3
    assert alerts_scan() == 1
    (email,) = mail.outbox
    assert email.to == ["alice@example.com"]
    assert email.subject == "AGIPower: your balance is below $3.00"
    assert "Your AGIPower balance is $2.50, below the $3.00" in email.body
    assert "Top up: http://127.0.0.1:8000/console/pay-as-you-go" in email.body
    assert "http://127.0.0.1:8000/console/alerts" in email.body
    alert = Alert.objects.get()
    assert (alert.kind, alert.balance_nanos, alert.threshold_nanos) == (
        AlertKind.LOW_BALANCE,
        usd_to_nanos("2.50"),
        usd_to_nanos("3"),
    )
    assert alert.emailed_at is not None

    # Below it stays quiet: more spending, more scans.
    spend(alice.account, "1")
    assert alerts_scan() == 0
    spend(alice.account, "0.5")
    assert alerts_scan() == 0
    assert len(mail.outbox) == 1


def test_a_rise_back_above_rearms_it_for_the_next_fall(alice):
    alerts_scan()
    spend(alice.account, "48")  # $2
    assert alerts_scan() == 1
    grant(alice, "1")  # $3: at the threshold again
    assert alerts_scan() == 0
    spend(alice.account, "0.01")  # $2.99
    assert alerts_scan() == 1
    grant(alice, "20", reason="top-up")  # $22.99
    assert alerts_scan() == 0
    spend(alice.account, "22")  # $0.99
    assert alerts_scan() == 1
    assert [m.subject for m in emails_to("alice@example.com")] == [
        "AGIPower: your balance is below $3.00"
    ] * 3
    assert list(
        Alert.objects.order_by("id").values_list("balance_nanos", flat=True)
    ) == [usd_to_nanos("2"), usd_to_nanos("2.99"), usd_to_nanos("0.99")]


def test_a_rise_and_fall_between_two_scans_is_caught(bob):
    # The journal keeps every balance: a top-up spent within a minute still
    # crossed the threshold on its way down.
    alerts_scan()
    grant(bob, "10")
    spend(bob.account, "9")
    assert alerts_scan() == 1
    assert "$1.00" in mail.outbox[0].body


def test_a_fall_that_recovers_before_the_scan_says_nothing(alice):
    alerts_scan()
    spend(alice.account, "49")
    grant(alice, "10")  # back to $11 before anyone looked
    assert alerts_scan() == 0
    assert mail.outbox == []


def test_a_new_account_that_was_never_above_the_threshold_hears_nothing(db):
    carol = user_signup(email="carol@example.com", password=PASSWORD)
    alerts_scan()
    grant(carol, "2", reason="welcome gift")  # $2, below $3 from the start
    assert alerts_scan() == 0
    spend(carol.account, "1.5")
    assert alerts_scan() == 0
    grant(carol, "0.5")
    spend(carol.account, "0.99")
    assert alerts_scan() == 0
    assert mail.outbox == []
    assert not Alert.objects.exists()


def test_the_first_scan_judges_only_what_comes_after_it(alice):
    # Deploying alerts tells nobody about falls before it.
    spend(alice.account, "49")
    assert alerts_scan() == 0
    assert alerts_scan() == 0
    assert mail.outbox == []


def test_a_changed_threshold_applies_to_the_next_fall(alice):
    alerts_scan()
    alert_settings_save(
        account=alice.account, low_balance_threshold_nanos=usd_to_nanos("60")
    )
    # $50 is below the new threshold already: the customer just saw it.
    assert alerts_scan() == 0
    spend(alice.account, "1")
    assert alerts_scan() == 0
    grant(alice, "20")  # $69
    spend(alice.account, "10")  # $59
    assert alerts_scan() == 1
    assert mail.outbox[-1].subject == "AGIPower: your balance is below $60.00"
    assert "Your AGIPower balance is $59.00, below the $60.00" in mail.outbox[-1].body

    # Lowered: a fall below the old threshold is no fall below the new one.
    alert_settings_save(
        account=alice.account, low_balance_threshold_nanos=usd_to_nanos("10")
    )
    spend(alice.account, "40")  # $19
    assert alerts_scan() == 0
    spend(alice.account, "10")  # $9
    assert alerts_scan() == 1
    assert len(mail.outbox) == 2


def test_a_fall_judged_by_a_threshold_changed_before_the_scan_is_void(alice):
    alerts_scan()
    spend(alice.account, "47.50")  # $2.50: below $3...
    alert_settings_save(
        account=alice.account, low_balance_threshold_nanos=usd_to_nanos("2")
    )  # ...but not below $2, the threshold by the time anyone looks
    assert alerts_scan() == 0
    spend(alice.account, "1")  # $1.50
    assert alerts_scan() == 1
    assert "below the $2.00" in mail.outbox[0].body


def test_saving_unchanged_settings_keeps_a_pending_alert(alice):
    alerts_scan()
    spend(alice.account, "48")
    alert_settings_save(account=alice.account, key_usage_percent=90)
    alert_settings_save(
        account=alice.account, low_balance_threshold_nanos=usd_to_nanos("3")
    )
    assert alerts_scan() == 1


def test_turned_off_it_sends_nothing_and_on_again_only_new_falls(alice):
    alerts_scan()
    alert_settings_save(account=alice.account, low_balance_enabled=False)
    spend(alice.account, "48")  # $2
    assert alerts_scan() == 0
    alert_settings_save(account=alice.account, low_balance_enabled=True)
    assert alerts_scan() == 0  # the fall came while it was off
    grant(alice, "5")
    spend(alice.account, "5")
    assert alerts_scan() == 1
    assert len(mail.outbox) == 1


def test_each_account_has_its_own_threshold(alice, bob):
    grant(bob, "50")
    alerts_scan()
    alert_settings_save(
        account=bob.account, low_balance_threshold_nanos=usd_to_nanos("45")
    )
    spend(alice.account, "6")  # $44: above alice's $3
    spend(bob.account, "6")  # $44: below bob's $45
    assert alerts_scan() == 1
    assert [m.to for m in mail.outbox] == [["bob@example.com"]]


def test_an_alert_whose_email_task_was_lost_is_sent_by_a_later_scan(alice):
    lost = Alert.objects.create(
        account=alice.account,
        kind=AlertKind.LOW_BALANCE,
        balance_nanos=usd_to_nanos("1"),
        threshold_nanos=usd_to_nanos("3"),
        created_at=timezone.now() - timedelta(minutes=15),
    )
    alerts_scan()
    alerts_scan()
    assert len(mail.outbox) == 1
    lost.refresh_from_db()
    assert lost.emailed_at is not None


@pytest.mark.django_db(transaction=True)
def test_two_overlapping_scans_send_one_email(alice):
    alerts_scan()
    spend(alice.account, "48")
    first_done = threading.Event()
    commit_first = threading.Event()
    results = {}

    def first():
        try:
            from django.db import transaction

            with transaction.atomic():
                # The alert is written, not yet committed: a second scan runs.
                results["first"] = alerts_scan()
                first_done.set()
                assert commit_first.wait(timeout=20)
        finally:
            connection.close()

    def second():
        try:
            assert first_done.wait(timeout=20)
            results["second"] = alerts_scan()
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    # The second scan waits for the first one's row before it can judge it.
    deadline = time.monotonic() + 20
    while not (_waiting_for_a_lock() or "second" in results):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    commit_first.set()
    for thread in threads:
        thread.join(timeout=30)
    assert results == {"first": 1, "second": 0}
    assert Alert.objects.count() == 1
    assert len(mail.outbox) == 1
    assert alerts_scan() == 0


def _waiting_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


def test_beat_runs_the_scan_every_minute_as_a_registered_task(settings, alice):
    from agipower.celery import app

    assert settings.CELERY_BEAT_SCHEDULE["alerts"] == {
        "task": "alerts.tasks.alerts_scan",
        "schedule": 60.0,
    }
    scan = app.tasks["alerts.tasks.alerts_scan"]
    scan.delay()
    spend(alice.account, "49")
    assert scan.delay().get() == 1
    assert len(mail.outbox) == 1
