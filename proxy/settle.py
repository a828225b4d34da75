"""Group commit of settlements.

All of an account's changes take its wallet row lock until their commit ends,
so a hot account commits one transaction at a time. Finished requests of an
account therefore queue here, and one task per account settles everything
queued as one ``proxy_settle_many`` statement (holds released, costs charged,
one usage entry, keys' usage, request logs), then the next batch. A request
awaits its own batch: when it is answered, its cost is committed.

The batch runs in its own task, so a request cancelled by a client that went
away still has its settlement committed.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

logger = logging.getLogger(__name__)

MAX_BATCH = 500
RETRIES = 3


@dataclass(frozen=True)
class Charged:
    charged_nanos: int
    topup_nanos: int
    bonus_nanos: int


class SettleQueue:
    def __init__(self, pool: AsyncConnectionPool):
        self.pool = pool
        self._queues: dict[int, list[tuple[dict, asyncio.Future]]] = {}
        self._running: set[int] = set()

    async def settle(self, account_id: int, item: dict) -> Charged:
        """Queue one finished request (its log fields, hold and cost) and wait
        until it is committed."""
        future = asyncio.get_running_loop().create_future()
        self._queues.setdefault(account_id, []).append((item, future))
        if account_id not in self._running:
            self._running.add(account_id)
            asyncio.create_task(self._drain(account_id))  # noqa: RUF006 - kept in _running
        return await asyncio.shield(future)

    async def _drain(self, account_id: int) -> None:
        try:
            while queue := self._queues.pop(account_id, None):
                for start in range(0, len(queue), MAX_BATCH):
                    await self._commit(account_id, queue[start : start + MAX_BATCH])
        finally:
            self._running.discard(account_id)
            if self._queues.get(account_id):  # arrived while we were finishing
                self._running.add(account_id)
                asyncio.create_task(self._drain(account_id))  # noqa: RUF006

    async def _commit(self, account_id: int, batch: list[tuple[dict, asyncio.Future]]):
        items = [item for item, _ in batch]
        entry_key = f"usage:{uuid.uuid4()}"
        description = f"API usage: {len(items)} request{'s' if len(items) > 1 else ''}"
        for attempt in range(1, RETRIES + 1):
            try:
                async with self.pool.connection() as conn:
                    cursor = await conn.execute(
                        "SELECT charged, from_topup, from_bonus "
                        "FROM proxy_settle_many(%s, %s, %s, %s)",
                        [account_id, Jsonb(items), entry_key, description],
                    )
                    rows = await cursor.fetchall()
                break
            except Exception as exc:
                # A retry is safe: settled holds are skipped and logs are
                # written once. Holds left by a batch that never commits are
                # released by the sweep.
                logger.exception(
                    "settling %d requests failed (try %d)", len(items), attempt
                )
                if attempt == RETRIES:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    return
                await asyncio.sleep(0.05 * attempt)
        for (_, future), row in zip(batch, rows, strict=True):
            if not future.done():
                future.set_result(Charged(*row))
