"""Periodic work on request logs and bodies (scheduled in
settings.CELERY_BEAT_SCHEDULE): thin wrappers of proxy/retention.py,
proxy/reconciliation.py, proxy/rollups.py and proxy/body_retention.py."""

from __future__ import annotations

from celery import shared_task

from proxy import body_retention, reconciliation, retention, rollups


@shared_task
def requestlog_partitions_ensure() -> list[str]:
    return retention.requestlog_partitions_ensure()


@shared_task
def requestlog_retain() -> dict:
    retained = retention.requestlog_retain()
    return {
        "before": retained.before.isoformat(),
        "dropped": retained.dropped,
        "deleted": retained.deleted,
        "bodies_deleted": retained.bodies_deleted,
        "complete": retained.complete,
    }


@shared_task
def usage_fold() -> int:
    return rollups.usage_fold()


@shared_task
def rollups_reconcile() -> int:
    return reconciliation.rollups_reconcile().drift_count


@shared_task
def request_bodies_expire() -> int:
    return body_retention.request_bodies_expire()
