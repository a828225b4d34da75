"""The hourly rollups catch up with the deltas the settlement batches append
(``UsageDelta``; proxy/sql/proxy_v1.sql: ``proxy_usage_fold``).

Folding is bookkeeping, not correctness: every reader adds the deltas not yet
folded to the rollups, so a count is exact whether a delta was folded a moment
ago or not at all. It keeps the deltas few, so that readers add a handful of
rows, not a day's worth. A beat task folds every few seconds
(``USAGE_FOLD_SECONDS``); each statement folds at most ``FOLD_BATCH`` deltas,
in its own short transaction, until none are left.
"""

from __future__ import annotations

from django.db import connection, transaction

FOLD_BATCH = 5_000
# A fold that keeps finding deltas (a flood of batches) stops after this many
# statements; the next beat goes on from there.
FOLD_ROUNDS = 100


def usage_fold(*, batch: int = FOLD_BATCH, rounds: int = FOLD_ROUNDS) -> int:
    """Fold the deltas into the hourly rollups; how many were folded."""
    folded = 0
    for _ in range(rounds):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT proxy_usage_fold(%s)", [batch])
            moved = cursor.fetchone()[0]
        folded += moved
        if moved < batch:
            break
    return folded
