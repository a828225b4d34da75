"""The ledger's invariants, checked in the database for every account at once.

Each check is a query that returns the accounts (or lots) where the invariant
fails; an empty answer from all of them means the ledger is whole.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from django.db import connection, transaction
from django.utils import timezone

from billing.ledger.models import ReconciliationRun
from billing.ledger.sql_install import sql_drift

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Drift:
    check: str
    account_id: int | None  # None: the database's SQL, not an account
    detail: str


# name -> (what must hold, a query returning account_id and a detail where it fails)
CHECKS: dict[str, tuple[str, str]] = {
    "wallet_matches_journal": (
        "each pool's balance is the sum of its deltas in the journal",
        """
        SELECT w.account_id,
               format('wallet topup %s bonus %s, journal topup %s bonus %s',
                      w.topup_nanos, w.bonus_nanos, coalesce(j.topup, 0),
                      coalesce(j.bonus, 0))
          FROM billing_wallet w
          LEFT JOIN (SELECT account_id, sum(topup_delta_nanos) AS topup,
                            sum(bonus_delta_nanos) AS bonus
                       FROM billing_ledgerentry GROUP BY account_id) j
            ON j.account_id = w.account_id
         WHERE w.topup_nanos <> coalesce(j.topup, 0)
            OR w.bonus_nanos <> coalesce(j.bonus, 0)
        """,
    ),
    "wallet_matches_lots": (
        "each pool's balance is the sum of what remains of its lots",
        """
        SELECT w.account_id,
               format('wallet topup %s bonus %s, lots topup %s bonus %s',
                      w.topup_nanos, w.bonus_nanos, coalesce(l.topup, 0),
                      coalesce(l.bonus, 0))
          FROM billing_wallet w
          LEFT JOIN (SELECT account_id,
                            sum(remaining_nanos) FILTER (WHERE pool = 'topup') AS topup,
                            sum(remaining_nanos) FILTER (WHERE pool = 'bonus') AS bonus
                       FROM billing_creditlot GROUP BY account_id) l
            ON l.account_id = w.account_id
         WHERE w.topup_nanos <> coalesce(l.topup, 0)
            OR w.bonus_nanos <> coalesce(l.bonus, 0)
        """,
    ),
    "lot_matches_movements": (
        "what remains of a lot is the sum of its movements, between 0 and its amount",
        """
        SELECT l.account_id,
               format('lot %s: remaining %s of %s, movements %s', l.id,
                      l.remaining_nanos, l.amount_nanos, coalesce(m.total, 0))
          FROM billing_creditlot l
          LEFT JOIN (SELECT lot_id, sum(delta_nanos) AS total
                       FROM billing_lotmovement GROUP BY lot_id) m ON m.lot_id = l.id
         WHERE l.remaining_nanos <> coalesce(m.total, 0)
            OR l.remaining_nanos < 0 OR l.remaining_nanos > l.amount_nanos
            OR (l.pool = 'topup' AND l.source NOT IN ('topup', 'adjustment'))
            OR (l.source = 'topup' AND l.pool <> 'topup')
        """,
    ),
    "entry_matches_movements": (
        "an entry's pool deltas are the sums of its lot movements in each pool",
        """
        SELECT e.account_id,
               format('entry %s: deltas topup %s bonus %s, movements topup %s '
                      'bonus %s', e.id, e.topup_delta_nanos, e.bonus_delta_nanos,
                      coalesce(m.topup, 0), coalesce(m.bonus, 0))
          FROM billing_ledgerentry e
          LEFT JOIN (SELECT mv.entry_id,
                        sum(mv.delta_nanos) FILTER (WHERE l.pool = 'topup') AS topup,
                        sum(mv.delta_nanos) FILTER (WHERE l.pool = 'bonus') AS bonus
                       FROM billing_lotmovement mv
                       JOIN billing_creditlot l ON l.id = mv.lot_id
                      GROUP BY mv.entry_id) m ON m.entry_id = e.id
         WHERE e.topup_delta_nanos <> coalesce(m.topup, 0)
            OR e.bonus_delta_nanos <> coalesce(m.bonus, 0)
            OR e.amount_nanos <> e.topup_delta_nanos + e.bonus_delta_nanos
        """,
    ),
    "latest_entry_matches_wallet": (
        "the balances after the latest entry are the wallet's balances",
        """
        SELECT w.account_id,
               format('wallet topup %s bonus %s, entry %s says topup %s bonus %s',
                      w.topup_nanos, w.bonus_nanos, e.id, e.topup_balance_nanos,
                      e.bonus_balance_nanos)
          FROM billing_wallet w
          JOIN LATERAL (SELECT id, topup_balance_nanos, bonus_balance_nanos
                          FROM billing_ledgerentry
                         WHERE account_id = w.account_id
                         ORDER BY id DESC LIMIT 1) e ON true
         WHERE e.topup_balance_nanos <> w.topup_nanos
            OR e.bonus_balance_nanos <> w.bonus_nanos
        """,
    ),
    "held_matches_holds": (
        "held is the sum of the active holds, never negative, never above the total",
        """
        SELECT w.account_id,
               format('held %s, active holds %s, total %s', w.held_nanos,
                      coalesce(h.total, 0), w.topup_nanos + w.bonus_nanos)
          FROM billing_wallet w
          LEFT JOIN (SELECT account_id, sum(amount_nanos) AS total FROM billing_hold
                      WHERE state = 'active' GROUP BY account_id) h
            ON h.account_id = w.account_id
         WHERE w.held_nanos <> coalesce(h.total, 0)
            OR w.held_nanos < 0
            OR w.held_nanos > w.topup_nanos + w.bonus_nanos
        """,
    ),
    "nothing_negative": (
        "no pool and no lot is ever negative",
        """
        SELECT account_id, format('wallet topup %s bonus %s', topup_nanos, bonus_nanos)
          FROM billing_wallet WHERE topup_nanos < 0 OR bonus_nanos < 0
        UNION ALL
        SELECT account_id, format('lot %s remaining %s', id, remaining_nanos)
          FROM billing_creditlot WHERE remaining_nanos < 0
        """,
    ),
}


def ledger_check(*, account_ids: list[int] | None = None) -> list[Drift]:
    """Every invariant for every account (or the given ones), in one snapshot."""
    drifts: list[Drift] = []
    snapshot = not connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        if snapshot:
            # One consistent view of all the tables, as of the first query.
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        for name, (_, sql) in CHECKS.items():
            cursor.execute(sql)
            for account_id, detail in cursor.fetchall():
                if account_ids is None or account_id in account_ids:
                    drifts.append(Drift(name, account_id, detail))
    return drifts


def ledger_reconcile() -> ReconciliationRun:
    """Check everything and record the result where operators see it (admin):
    the ledger's invariants, and that the database's functions and triggers are
    the code's (billing/sql_install.py)."""
    run = ReconciliationRun.objects.create()
    drifts = ledger_check()
    drifts += [Drift("sql_matches_code", None, detail) for detail in sql_drift()]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM billing_wallet")
        run.accounts_checked = cursor.fetchone()[0]
    run.drift_count = len(drifts)
    run.drifts = [asdict(drift) for drift in drifts]
    run.finished_at = timezone.now()
    run.save()
    for drift in drifts:
        logger.error(
            "ledger drift: %s on account %s: %s",
            drift.check,
            drift.account_id,
            drift.detail,
        )
    if not drifts:
        logger.info("ledger reconciled: %d accounts, no drift", run.accounts_checked)
    return run
