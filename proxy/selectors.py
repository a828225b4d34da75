"""Reads of the proxy's tables: request logs (an account's own only) and
price versions."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from accounts.models import Account
from proxy.models import ModelPrice, RequestLog


def request_logs_for_account(
    *,
    account: Account,
    key_id: int | None = None,
    model: str | None = None,
    since: datetime | None = None,
    before: datetime | None = None,
) -> QuerySet[RequestLog]:
    """An account's request logs, newest first: ``since`` inclusive, ``before``
    exclusive. A key id of another account finds nothing."""
    logs = RequestLog.objects.filter(account=account)
    if key_id is not None:
        logs = logs.filter(api_key_id=key_id)
    if model:
        logs = logs.filter(model=model)
    if since is not None:
        logs = logs.filter(created_at__gte=since)
    if before is not None:
        logs = logs.filter(created_at__lt=before)
    return logs.order_by("-created_at", "-id")


def price_current(*, model_id: str, when: datetime) -> ModelPrice | None:
    """The price version of ``model_id`` in force at ``when``, or None."""
    return (
        ModelPrice.objects.filter(model_id=model_id, effective_from__lte=when)
        .order_by("-effective_from")
        .first()
    )


def price_at(*, model_id: str, when: datetime) -> ModelPrice:
    """The price version of ``model_id`` in force at ``when``: the latest one
    that started at or before it."""
    price = price_current(model_id=model_id, when=when)
    if price is None:
        raise ModelPrice.DoesNotExist(f"{model_id} has no price at {when.isoformat()}")
    return price
