"""Kept bodies in tests: a settled request's bodies kept as the proxy keeps
them (``proxy_bodies_keep``, after its settlement), and a kept body read back."""

from __future__ import annotations

import zlib
from datetime import datetime

from django.db import connection

from proxy.call import KeptBodies

KEEP_SQL = "SELECT proxy_bodies_keep(%s, %s, %s, %s, %s, %s)"


def keep_params(account_id: int, item: dict, request: bytes, response: bytes):
    """The parameters of KEEP_SQL for the request of a settlement ``item``."""
    kept = KeptBodies.of(request, response)
    created = item["created_at"]
    if isinstance(created, str):
        created = datetime.fromisoformat(created)
    return [
        account_id,
        item["id"],
        created,
        kept.request,
        kept.response,
        kept.truncated,
    ]


def bodies_keep(
    account_id: int, item: dict, request: bytes = b"{}", response: bytes = b"{}"
) -> bool:
    """Keep the bodies of the request of ``item`` (settled already); answers
    whether they were kept (the account's switch is on)."""
    with connection.cursor() as cursor:
        cursor.execute(KEEP_SQL, keep_params(account_id, item, request, response))
        return cursor.fetchone()[0]


def unpacked(stored) -> bytes:
    """A kept body (zlib-compressed bytea) as the bytes it was."""
    return zlib.decompress(bytes(stored))
