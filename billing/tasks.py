"""Periodic ledger work (scheduled in settings.CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task

from billing.ledger import expiry, holds, reconciliation


@shared_task
def lots_expire_due() -> int:
    return expiry.lots_expire_due()


@shared_task
def holds_sweep_stale() -> int:
    return holds.holds_sweep_stale()


@shared_task
def ledger_reconcile() -> int:
    return reconciliation.ledger_reconcile().drift_count


@shared_task
def autotopup_run(account_id: int) -> None:
    from billing.payments.services import autotopup_run as run

    run(account_id=account_id)


@shared_task
def autotopup_sweep() -> int:
    from billing.payments.services import autotopup_sweep as sweep

    return sweep()


@shared_task
def payments_reconcile() -> dict:
    from billing.payments.services import payments_reconcile as reconcile

    return reconcile()


@shared_task
def self_refunds_resolve() -> int:
    from billing.payments.self_refunds import self_refunds_resolve as resolve

    return resolve()
