"""Reads of API keys. Another account's key is never found (a 404, not a 403)."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Account
from apikeys.models import ApiKey, KeyKind, KeyStatus
from apikeys.secrets import (
    MANAGEMENT_PREFIX,
    PAYG_PREFIX,
    key_digest,
    key_is_well_formed,
)


def keys_for_account(*, account: Account, kind: str = KeyKind.PAYG) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(account=account, kind=kind, deleted_at=None).order_by(
        "-created_at", "-id"
    )


def key_for_account(
    *, account: Account, key_id, kind: str | None = KeyKind.PAYG
) -> ApiKey:
    """Raises ApiKey.DoesNotExist for anyone else's key, or a deleted one.
    ``kind=None`` finds a key of either kind (the key pages manage both)."""
    keys = ApiKey.objects.filter(account=account, deleted_at=None)
    if kind is not None:
        keys = keys.filter(kind=kind)
    return keys.get(pk=key_id)


def api_key_for_secret(secret: str, *, kind: str) -> ApiKey | None:
    """The usable key of this kind for a presented secret, else None."""
    prefix = PAYG_PREFIX if kind == KeyKind.PAYG else MANAGEMENT_PREFIX
    if not key_is_well_formed(secret, prefix):
        return None
    return (
        ApiKey.objects.select_related("account__owner")
        .filter(
            digest=key_digest(secret),
            kind=kind,
            status=KeyStatus.ENABLED,
            deleted_at=None,
        )
        .first()
    )
