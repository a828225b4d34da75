"""The scan that finds due alerts, every minute (``alerts.tasks.alerts_scan``).

It reads only what changed. A balance moves only by a journal entry, and an
entry carries the balance after it (and, with its amount, the one before), so
the entries since the last scan tell every fall below a threshold, even one
between two scans. The entries are read by their primary key: those after the
mark the scans left a few minutes before (``LOOKBACK``), since an entry's
transaction may commit after a later entry's. Reading an entry twice is
harmless: each statement below is idempotent.

- **Low balance.** An entry that takes the balance from at or above the
  account's threshold to below it is a crossing. If the balance is still below
  the threshold now, the newest crossing after the account's
  ``LowBalanceState.judged_entry_id`` is alerted, and becomes it: the same
  crossing never again, the next one (after a rise back) again. An account
  whose balance was never at or above the threshold has no crossing.
- **Key usage.** The keys with a credit limit of the accounts that used credits
  since the mark, whose use this period (the proxy's rule: ``apikey_period_start``)
  reached the account's share of the limit. The alert's unique constraint (per
  key, period and limit) makes it once per period.

Each kind is chosen and written in one statement (INSERT … ON CONFLICT …
RETURNING), so two scans that overlap never write an alert twice: the second
waits for the first's row and then finds it done.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from alerts.models import (
    DEFAULT_PERCENT,
    DEFAULT_THRESHOLD_NANOS,
    Alert,
    AlertKind,
    ScanMark,
)
from alerts.selectors import KEY_PERIOD_USED
from apikeys.models import KeyKind, KeyStatus
from billing.ledger.models import EntryKind, LedgerEntry

# How long an entry's transaction may take to commit and still be read.
LOOKBACK = timedelta(minutes=5)
# An alert whose email task was lost (the worker died between the scan's commit
# and queueing it) is queued again after this, for as long as RESEND_WITHIN.
RESEND_AFTER = timedelta(minutes=10)
RESEND_WITHIN = timedelta(days=1)

LOW_BALANCE_DUE = """
WITH crossed AS (
    SELECT e.account_id, max(e.id) AS entry_id
      FROM billing_ledgerentry e
      LEFT JOIN alerts_alertsettings s ON s.account_id = e.account_id
      LEFT JOIN alerts_lowbalancestate j ON j.account_id = e.account_id
     WHERE e.id > %(from_id)s
       AND e.id > coalesce(j.judged_entry_id, 0)
       AND coalesce(s.low_balance_enabled, true)
       -- after the entry: below; before it: at or above.
       AND e.topup_balance_nanos + e.bonus_balance_nanos
           < coalesce(s.low_balance_threshold_nanos, %(threshold)s)
       AND e.topup_balance_nanos + e.bonus_balance_nanos - e.amount_nanos
           >= coalesce(s.low_balance_threshold_nanos, %(threshold)s)
     GROUP BY e.account_id
), due AS (
    SELECT c.account_id, c.entry_id,
           w.topup_nanos + w.bonus_nanos AS balance,
           coalesce(s.low_balance_threshold_nanos, %(threshold)s) AS threshold
      FROM crossed c
      JOIN billing_wallet w ON w.account_id = c.account_id
      LEFT JOIN alerts_alertsettings s ON s.account_id = c.account_id
     WHERE w.topup_nanos + w.bonus_nanos
           < coalesce(s.low_balance_threshold_nanos, %(threshold)s)
), claimed AS (
    INSERT INTO alerts_lowbalancestate AS j (account_id, judged_entry_id)
    SELECT account_id, entry_id FROM due
     -- One order for every scan: two that overlap wait, never deadlock.
     ORDER BY account_id
    ON CONFLICT (account_id) DO UPDATE
       SET judged_entry_id = EXCLUDED.judged_entry_id
     WHERE j.judged_entry_id < EXCLUDED.judged_entry_id
    RETURNING j.account_id
)
INSERT INTO alerts_alert (account_id, kind, created_at, balance_nanos,
                          threshold_nanos)
SELECT d.account_id, %(kind)s, %(now)s, d.balance, d.threshold
  FROM due d JOIN claimed c ON c.account_id = d.account_id
RETURNING id
"""

KEY_USAGE_DUE = """
WITH active AS (
    SELECT DISTINCT e.account_id
      FROM billing_ledgerentry e
     WHERE e.id > %(from_id)s AND e.kind = %(usage)s
), limited AS (
    SELECT k.id, k.account_id, k.limit_nanos, k.limit_reset,
           coalesce(s.key_usage_percent, %(percent)s) AS percent,
           coalesce(apikey_period_start(k.limit_reset, %(now)s), k.period_start,
                    k.created_at) AS period_start,
           {key_period_used} AS used
      FROM active a
      JOIN apikeys_apikey k ON k.account_id = a.account_id
      LEFT JOIN alerts_alertsettings s ON s.account_id = a.account_id
     WHERE k.kind = %(payg)s AND k.deleted_at IS NULL AND k.status = %(enabled)s
       AND k.limit_nanos IS NOT NULL
       AND coalesce(s.key_usage_enabled, true)
)
INSERT INTO alerts_alert (account_id, kind, created_at, api_key_id,
                          key_period_start, key_used_nanos, key_limit_nanos,
                          key_limit_reset, key_percent)
SELECT account_id, %(kind)s, %(now)s, id, period_start, used, limit_nanos,
       limit_reset, percent
  FROM limited
 WHERE used::numeric * 100 >= limit_nanos::numeric * percent
 ORDER BY id
ON CONFLICT (api_key_id, key_period_start, key_limit_nanos)
   WHERE kind = 'key_usage' DO NOTHING
RETURNING id
""".replace("{key_period_used}", KEY_PERIOD_USED)


def journal_latest_id() -> int:
    """The newest journal entry's id (the primary key's last value)."""
    return LedgerEntry.objects.aggregate(latest=Max("id"))["latest"] or 0


def _window_start(now: datetime) -> int:
    """Leave this scan's mark and answer the entry after which to read: the
    mark of LOOKBACK ago, or the oldest one kept. The first scan ever reads
    nothing; what came before it is not judged."""
    ScanMark.objects.create(at=now, journal_entry_id=journal_latest_id())
    base = (
        ScanMark.objects.filter(at__lte=now - LOOKBACK).order_by("-at", "-id").first()
        or ScanMark.objects.order_by("at", "id").first()
    )
    ScanMark.objects.filter(at__lt=base.at).delete()
    return base.journal_entry_id


def _inserted(sql: str, params: dict) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


@transaction.atomic
def alerts_due(*, now: datetime | None = None) -> list[int]:
    """Write the alerts that are due now and answer their ids; the caller
    queues their emails once this has committed."""
    now = now or timezone.now()
    from_id = _window_start(now)
    low = _inserted(
        LOW_BALANCE_DUE,
        {
            "from_id": from_id,
            "threshold": DEFAULT_THRESHOLD_NANOS,
            "kind": AlertKind.LOW_BALANCE,
            "now": now,
        },
    )
    keys = _inserted(
        KEY_USAGE_DUE,
        {
            "from_id": from_id,
            "usage": EntryKind.USAGE,
            "percent": DEFAULT_PERCENT,
            "payg": KeyKind.PAYG,
            "enabled": KeyStatus.ENABLED,
            "kind": AlertKind.KEY_USAGE,
            "now": now,
        },
    )
    return low + keys


def alerts_unsent(*, now: datetime | None = None) -> list[int]:
    """Alerts whose email was never sent though it should have been long ago:
    their task was lost. Sending claims the alert, so queueing one again that
    is merely slow sends nothing twice."""
    now = now or timezone.now()
    return list(
        Alert.objects.filter(
            emailed_at=None,
            created_at__lt=now - RESEND_AFTER,
            created_at__gte=now - RESEND_WITHIN,
        )
        .order_by("created_at")
        .values_list("id", flat=True)[:1000]
    )
