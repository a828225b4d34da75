"""The alerts scan (``alerts.scan.alerts_due``, what beat runs every minute) on
a platform of 100,000 accounts.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/agipower_bench_alerts \
        .venv/bin/python bench/alerts_scan.py [--accounts 100000] [--busy 40000]

The accounts (each with a wallet and a history of journal entries, a fifth of
them with two keys with a daily credit limit) are written by SQL. Then:

- **quiet**: a scan when nothing moved;
- **busy**: a scan after a minute of ``--busy`` usage entries (two each of up
  to a fifth of the accounts, 1% of them falling below the $3 threshold) and
  one of every account with keys (1 key in 50 past 80% of its limit): it must
  find exactly those;
- **after**: the next scan, reading the same entries again (its look back),
  finds nothing new.

Each is timed (median of several runs where repeatable) and the plans of the
two statements are printed, to show they read the journal by its primary key
and the other tables by theirs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault(
    "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/agipower_bench_alerts"
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agipower.settings")

USD = 1_000_000_000


def _prepare_database() -> None:
    import psycopg

    url = os.environ["DATABASE_URL"]
    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


POPULATE = """
INSERT INTO accounts_user (password, is_superuser, email, full_name, is_active,
                           is_staff, date_joined)
SELECT '!', false, 'bench-' || g || '@example.com', '', true, false, now()
  FROM generate_series(1, %(n)s) g;
INSERT INTO accounts_account (owner_id, name, created_at)
SELECT id, '', now() FROM accounts_user WHERE email LIKE 'bench-%%';
-- Balances from $1 to $200; each account's history: 10 entries, the last one
-- leaving the wallet's balance.
INSERT INTO billing_wallet (account_id, topup_nanos, bonus_nanos, held_nanos,
                            updated_at)
SELECT id, (1 + id %% 200) * %(usd)s::bigint, 0, 0, now() FROM accounts_account;
INSERT INTO billing_ledgerentry (account_id, kind, amount_nanos,
    topup_delta_nanos, bonus_delta_nanos, topup_balance_nanos,
    bonus_balance_nanos, created_at, description, reference, method,
    idempotency_key)
SELECT w.account_id, 'usage', -1000, -1000, 0,
       w.topup_nanos + (10 - h) * 1000, 0, now() - interval '1 day', '', '', '',
       'history:' || h
  FROM billing_wallet w, generate_series(1, 10) h
 ORDER BY h, w.account_id;
INSERT INTO apikeys_apikey (account_id, kind, name, prefix, digest, status,
    created_at, used_nanos, limit_nanos, limit_reset, period_start,
    period_used_nanos, disabled_reason)
SELECT a.id, 'payg', 'key-' || k, 'sk-ap-v1-bench', md5(a.id || ':' || k),
       'enabled', now(), 0, 10 * %(usd)s::bigint, 'daily',
       date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', 0, ''
  FROM accounts_account a, generate_series(1, 2) k
 WHERE a.id %% 5 = 0;
"""

# A minute of work: two usage entries each of ``accounts`` accounts (1% of
# them going from $4.50 to $3.50 to $2.50: a fall below $3; the others spending
# a few nanos), and one of every account with keys, whose keys have used $1 of
# their $10 today (1 in 50: $9).
BUSY = """
CREATE TEMPORARY TABLE moving AS
SELECT id AS account_id, (row_number() OVER (ORDER BY id)) %% 100 = 0 AS falls
  FROM accounts_account WHERE id %% 5 = 1 ORDER BY id LIMIT %(accounts)s;
UPDATE billing_wallet w SET topup_nanos = 2.5 * %(usd)s::bigint
  FROM moving m WHERE w.account_id = m.account_id AND m.falls;
INSERT INTO billing_ledgerentry (account_id, kind, amount_nanos,
    topup_delta_nanos, bonus_delta_nanos, topup_balance_nanos,
    bonus_balance_nanos, created_at, description, reference, method,
    idempotency_key)
SELECT w.account_id, 'usage', -a.amount, -a.amount, 0,
       w.topup_nanos + (2 - e) * a.amount, 0, now(), '', '', '', 'busy:' || e
  FROM moving m
  JOIN billing_wallet w ON w.account_id = m.account_id
  CROSS JOIN LATERAL (SELECT CASE WHEN m.falls THEN %(usd)s::bigint ELSE 1000 END
                             AS amount) a,
       generate_series(1, 2) e
 ORDER BY e, w.account_id;
INSERT INTO billing_ledgerentry (account_id, kind, amount_nanos,
    topup_delta_nanos, bonus_delta_nanos, topup_balance_nanos,
    bonus_balance_nanos, created_at, description, reference, method,
    idempotency_key)
SELECT w.account_id, 'usage', -1000, -1000, 0, w.topup_nanos, 0, now(), '', '',
       '', 'busy:key'
  FROM billing_wallet w WHERE w.account_id %% 5 = 0;
UPDATE apikeys_apikey SET period_used_nanos = CASE WHEN id %% 50 = 0
                                                   THEN 9 * %(usd)s::bigint
                                                   ELSE %(usd)s::bigint END;
"""


def _timed(fn, runs: int = 1) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--busy", type=int, default=40_000)
    args = parser.parse_args()

    _prepare_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from alerts.models import Alert, AlertKind
    from alerts.scan import KEY_USAGE_DUE, LOW_BALANCE_DUE, alerts_due
    from money import usd_to_nanos

    call_command("migrate", verbosity=0)
    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(POPULATE, {"n": args.accounts, "usd": USD})
        cursor.execute("ANALYZE")
        cursor.execute("SELECT count(*) FROM billing_ledgerentry")
        (entries,) = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM apikeys_apikey")
        (keys,) = cursor.fetchone()
    print(
        f"{args.accounts:,} accounts, {entries:,} journal entries, {keys:,} keys "
        f"with a daily limit ({time.perf_counter() - start:.1f} s to write)"
    )

    now = timezone.now()
    alerts_due(now=now - timedelta(minutes=10))  # the first scan: a mark
    quiet, found = _timed(lambda: alerts_due(now=now - timedelta(minutes=6)), 5)
    assert found == [], found
    print(f"quiet: {quiet:.1f} ms (nothing moved)")

    busy_accounts = args.busy // 2
    with connection.cursor() as cursor:
        cursor.execute(BUSY, {"accounts": busy_accounts, "usd": USD})
        cursor.execute("ANALYZE billing_ledgerentry")
        cursor.execute("SELECT count(*), count(*) FILTER (WHERE falls) FROM moving")
        moved, expected_low = cursor.fetchone()
    busy, found = _timed(lambda: alerts_due(now=now))
    low = Alert.objects.filter(kind=AlertKind.LOW_BALANCE)
    key_alerts = Alert.objects.filter(kind=AlertKind.KEY_USAGE)
    assert low.count() == expected_low, (low.count(), expected_low)
    assert all(a.balance_nanos == usd_to_nanos("2.5") for a in low)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM apikeys_apikey WHERE id % 50 = 0")
        (expected_keys,) = cursor.fetchone()
    assert key_alerts.count() == expected_keys, (key_alerts.count(), expected_keys)
    print(
        f"busy: {busy:.1f} ms for {2 * moved + keys // 2:,} new entries: "
        f"{low.count():,} low-balance and {key_alerts.count():,} key alerts"
    )
    after, found = _timed(lambda: alerts_due(now=now + timedelta(minutes=1)), 5)
    assert found == [], found
    print(f"after: {after:.1f} ms (the same entries read again, nothing new)")

    from alerts.scan import _window_start

    with connection.cursor() as cursor:
        params = {
            "from_id": _window_start(now + timedelta(minutes=2)),
            "threshold": 3 * USD,
            "kind": "low_balance",
            "now": now,
        }
        for name, sql, extra in [
            ("low balance", LOW_BALANCE_DUE, {}),
            (
                "key usage",
                KEY_USAGE_DUE,
                {
                    "usage": "usage",
                    "percent": 80,
                    "payg": "payg",
                    "enabled": "enabled",
                    "kind": "key_usage",
                },
            ),
        ]:
            cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + sql, params | extra)
            print(f"\n-- plan of the {name} statement")
            for (line,) in cursor.fetchall():
                print(line)


if __name__ == "__main__":
    main()
