"""The data retention switch: an account may keep the bodies of its requests
and of their answers (off by default, as without a ``BodyRetention`` row) for
1 to 30 days.

The proxy learns the switch through its key cache (``KeyInfo.keep_bodies``, a
few seconds old at most) and captures the bodies while it is on; the
settlement keeps them only if the switch is still on when it commits, and
locks the switch's row until then (``proxy_batch`` in proxy/sql/proxy_v1.sql).
So turning the switch off here, which deletes every body the account kept in
the same transaction, leaves none behind: a settlement either committed first
(and its bodies are deleted here) or waits and finds the switch off.

Each body's expiry is set when it is kept (its time plus the days then
chosen): changing the days applies to the bodies kept from then on. An hourly
task deletes the expired ones; a body never outlives its request log either
(``request_bodies_delete_older``, called by log retention).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import connections, transaction
from django.utils import timezone

from accounts.models import Account
from proxy.models import BodyRetention, RequestBody

logger = logging.getLogger(__name__)

DAYS_MIN, DAYS_MAX = 1, 30
DAYS_DEFAULT = 7
# Bodies deleted per statement (each commits on its own).
DELETE_BATCH = 1_000


def body_retention_get(*, account: Account) -> BodyRetention:
    """The account's switch; off (and not saved) for an account that never
    turned it on."""
    retention = BodyRetention.objects.filter(account=account).first()
    return retention or BodyRetention(account=account, enabled=False, days=DAYS_DEFAULT)


def request_bodies_count(*, account: Account) -> int:
    return RequestBody.objects.filter(account=account).count()


@transaction.atomic
def body_retention_set(
    *, account: Account, store_bodies: bool, retention_days: int
) -> tuple[BodyRetention, int]:
    """Turn the switch on or off and set the days. Turning it off deletes every
    body the account kept. Answers the switch and how many bodies were
    deleted."""
    if not DAYS_MIN <= retention_days <= DAYS_MAX:
        raise ValueError(
            f"retention_days must be from {DAYS_MIN} to {DAYS_MAX}, "
            f"not {retention_days}"
        )
    BodyRetention.objects.get_or_create(account=account)
    # The row lock waits for a settlement that is keeping bodies (it holds the
    # row FOR SHARE until it commits); the delete below runs after it and so
    # sees what it kept.
    retention = BodyRetention.objects.select_for_update().get(account=account)
    retention.enabled = store_bodies
    retention.days = retention_days
    retention.updated_at = timezone.now()
    retention.save()
    deleted = 0
    if not store_bodies:
        deleted, _ = RequestBody.objects.filter(account=account).delete()
        if deleted:
            logger.info(
                "account %s stopped keeping bodies: %d deleted", account.pk, deleted
            )
    return retention, deleted


# Each batch is found by an index and deleted by the rows' addresses (a TID
# scan): never a scan of the whole table, however the planner would join.
EXPIRED = """
    DELETE FROM proxy_requestbody WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM proxy_requestbody WHERE expires_at < %s LIMIT %s))
"""
# A body expires at most DAYS_MAX days after its request, so the index on the
# expiry bounds the search for the bodies of requests made before a moment.
OLDER = """
    DELETE FROM proxy_requestbody WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM proxy_requestbody
         WHERE expires_at < %s AND created_at < %s LIMIT %s))
"""


def _delete_in_batches(sql: str, params: list, *, using: str) -> int:
    """Run a DELETE of at most DELETE_BATCH bodies (its last parameter) until
    it deletes fewer, each in a transaction of its own; answers how many."""
    total = 0
    while True:
        with transaction.atomic(using=using), connections[using].cursor() as cursor:
            cursor.execute(sql, [*params, DELETE_BATCH])
            count = cursor.rowcount
        total += count
        if count < DELETE_BATCH:
            return total


def request_bodies_expire(
    *, now: datetime | None = None, using: str = "default"
) -> int:
    """Delete the bodies whose days have passed; answers how many."""
    deleted = _delete_in_batches(EXPIRED, [now or timezone.now()], using=using)
    if deleted:
        logger.info("request bodies: %d expired and deleted", deleted)
    return deleted


def request_bodies_delete_older(*, before: datetime, using: str = "default") -> int:
    """Delete the bodies of requests made before ``before`` (whose logs
    retention deletes); answers how many."""
    return _delete_in_batches(
        OLDER,
        [before + timedelta(days=DAYS_MAX), before],
        using=using,
    )
