"""Calls of the ledger's SQL functions (``billing/sql/ledger_v1.sql``), with
their errors mapped to BillingError."""

from __future__ import annotations

from django.db import DatabaseError, connection, transaction

from billing.errors import (
    BillingError,
    HoldNotFound,
    IdempotencyConflict,
    InvalidAmount,
    LedgerDrift,
)

# The SQLSTATEs the functions raise (RAISE ... USING ERRCODE).
_SQLSTATE_ERRORS = {
    "AP002": IdempotencyConflict,
    "AP003": InvalidAmount,
    "AP004": BillingError,
    "AP005": HoldNotFound,
    "AP008": LedgerDrift,
    "22003": InvalidAmount,  # numeric value out of range
}


def sql_call(sql: str, params) -> list[tuple]:
    """Run one statement and return its rows, mapping the ledger's SQL errors to
    BillingError. Outside a transaction the statement commits on its own (one
    round trip); inside one it gets a savepoint so that a refusal does not break
    the caller's transaction."""
    try:
        if connection.in_atomic_block:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    except DatabaseError as exc:
        error = _billing_error(exc)
        if error is None:
            raise
        raise error from exc


def sql_call_one(sql: str, params) -> tuple:
    rows = sql_call(sql, params)
    if not rows:
        raise LedgerDrift("the ledger function returned nothing")
    return rows[0]


def _billing_error(exc: DatabaseError) -> BillingError | None:
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    diag = getattr(cause, "diag", None)
    message = (diag.message_primary if diag else None) or str(exc)
    error_class = _SQLSTATE_ERRORS.get(sqlstate)
    return error_class(message) if error_class else None
