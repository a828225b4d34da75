"""The data retention switch: an account may keep the bodies of its requests
and of their answers (off by default, as without a ``BodyRetention`` row) for
1 to 30 days.

The proxy learns the switch through its key cache (``KeyInfo.keep_bodies``, a
few seconds old at most) and captures the bodies while it is on; they are kept
after the request is settled, by ``proxy_bodies_keep`` (proxy/sql/proxy_v1.sql),
only if the switch is still on then, and that statement holds the switch's row
(FOR SHARE) until it commits.

Turning the switch off commits at once (it waits only for a keep in flight to
commit), and from then on no body of the account is shown (``proxy.bodies``)
nor kept. Deleting what was kept, which may be millions of rows, is left to a
task queued on commit (``request_bodies_purge_task``), a batch at a time, each
in a transaction of its own: a keep that committed before the switch went off
is among what it deletes, and a keep after it finds the switch off. The hourly
task finishes a purge that was lost. The switch may be turned on again once
the purge is done (``BodiesBeingDeleted`` until then), so that the bodies
shown are only ever those kept since it was last turned on.

Each body's expiry is set when it is kept (its time plus the days then
chosen): changing the days applies to the bodies kept from then on. The hourly
task deletes the expired ones; a body never outlives its request log either
(``request_bodies_delete_older``, called by log retention).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import shared_task
from django.db import connections, transaction
from django.utils import timezone

from accounts.models import Account
from proxy.models import BodyRetention, RequestBody

logger = logging.getLogger(__name__)

DAYS_MIN, DAYS_MAX = 1, 30
DAYS_DEFAULT = 7
# Bodies deleted per statement (each commits on its own).
DELETE_BATCH = 1_000


class BodiesBeingDeleted(Exception):
    """The switch cannot be turned on while the bodies kept before it was
    turned off are still being deleted."""


def body_retention_get(*, account: Account) -> BodyRetention:
    """The account's switch; off (and not saved) for an account that never
    turned it on."""
    retention = BodyRetention.objects.filter(account=account).first()
    return retention or BodyRetention(account=account, enabled=False, days=DAYS_DEFAULT)


def request_bodies_count(*, account: Account) -> int:
    """How many bodies the account has stored (while its switch is off: how
    many are still to be deleted)."""
    return RequestBody.objects.filter(account=account).count()


@transaction.atomic
def body_retention_set(
    *, account: Account, store_bodies: bool, retention_days: int
) -> BodyRetention:
    """Turn the switch on or off and set the days. Turning it off queues the
    deletion of every body the account kept (on commit); turning it on while
    that is under way raises BodiesBeingDeleted."""
    if not DAYS_MIN <= retention_days <= DAYS_MAX:
        raise ValueError(
            f"retention_days must be from {DAYS_MIN} to {DAYS_MAX}, "
            f"not {retention_days}"
        )
    BodyRetention.objects.get_or_create(account=account)
    # Waits for a keep in flight (it holds the row FOR SHARE until it commits);
    # the purge, queued on commit, comes after it and so sees what it kept.
    retention = BodyRetention.objects.select_for_update().get(account=account)
    kept = RequestBody.objects.filter(account=account).exists()
    if store_bodies and not retention.enabled and kept:
        raise BodiesBeingDeleted(
            "The bodies stored before the switch was turned off are still being "
            "deleted; turn it on again in a minute."
        )
    retention.enabled = store_bodies
    retention.days = retention_days
    retention.updated_at = timezone.now()
    retention.save()
    if not store_bodies and kept:
        account_id = account.pk
        transaction.on_commit(
            lambda: request_bodies_purge_task.delay(account_id), robust=True
        )
    return retention


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
# An account's bodies, by its index, only while its switch is off.
SWITCHED_OFF = """
    DELETE FROM proxy_requestbody WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM proxy_requestbody
         WHERE account_id = %s
           AND NOT EXISTS (SELECT 1 FROM proxy_bodyretention
                            WHERE account_id = %s AND enabled)
         LIMIT %s))
"""
# The accounts whose switch is off that still have bodies.
LEFT_BEHIND = """
    SELECT br.account_id FROM proxy_bodyretention br
     WHERE NOT br.enabled
       AND EXISTS (SELECT 1 FROM proxy_requestbody b
                    WHERE b.account_id = br.account_id)
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


def request_bodies_purge(*, account_id: int, using: str = "default") -> int:
    """Delete every body of an account whose switch is off; answers how many.
    Nothing while the switch is on."""
    deleted = _delete_in_batches(SWITCHED_OFF, [account_id, account_id], using=using)
    if deleted:
        logger.info(
            "account %s stopped keeping bodies: %d deleted", account_id, deleted
        )
    return deleted


# Here, beside the switch that queues it: proxy/tasks.py imports this module.
@shared_task
def request_bodies_purge_task(account_id: int) -> int:
    return request_bodies_purge(account_id=account_id)


def request_bodies_expire(
    *, now: datetime | None = None, using: str = "default"
) -> int:
    """Delete the bodies whose days have passed, and those of an account whose
    switch is off (its purge was lost); answers how many."""
    deleted = _delete_in_batches(EXPIRED, [now or timezone.now()], using=using)
    if deleted:
        logger.info("request bodies: %d expired and deleted", deleted)
    with connections[using].cursor() as cursor:
        cursor.execute(LEFT_BEHIND)
        left_behind = [account_id for (account_id,) in cursor.fetchall()]
    for account_id in left_behind:
        deleted += request_bodies_purge(account_id=account_id, using=using)
    return deleted


def request_bodies_delete_older(*, before: datetime, using: str = "default") -> int:
    """Delete the bodies of requests made before ``before`` (whose logs
    retention deletes); answers how many."""
    return _delete_in_batches(
        OLDER,
        [before + timedelta(days=DAYS_MAX), before],
        using=using,
    )
