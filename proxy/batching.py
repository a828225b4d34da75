"""Group commit of the proxy's writes, per account.

Every change to an account takes its wallet row lock until its commit ends, so
a hot account commits one transaction at a time. Requests of an account
therefore queue their holds (before going upstream) and their settlements
(after), and one task per account and kind commits everything queued as one
statement, then the next batch: ``proxy_hold_many`` and ``proxy_settle_many``
(``proxy/sql/proxy_v1.sql``). A request awaits its own batch, so when it goes
upstream its hold is committed, and when it is answered its cost is.

Batches run in tasks of their own: a request cancelled by a client that went
away still has its settlement committed.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

logger = logging.getLogger(__name__)

MAX_BATCH = 500


class AccountBatcher:
    """Queues items per account; ``commit(account_id, items)`` answers one
    result per item, in order."""

    def __init__(self, commit: Callable[[int, list], Awaitable[list]]):
        self.commit = commit
        self._queues: dict[int, list[tuple[object, asyncio.Future]]] = {}
        self._running: set[int] = set()

    async def submit(self, account_id: int, item):
        future = asyncio.get_running_loop().create_future()
        self._queues.setdefault(account_id, []).append((item, future))
        if account_id not in self._running:
            self._running.add(account_id)
            asyncio.create_task(self._drain(account_id))  # noqa: RUF006 - tracked in _running
        return await asyncio.shield(future)

    async def _drain(self, account_id: int) -> None:
        try:
            while queue := self._queues.pop(account_id, None):
                for start in range(0, len(queue), MAX_BATCH):
                    batch = queue[start : start + MAX_BATCH]
                    try:
                        results = await self.commit(account_id, [i for i, _ in batch])
                    except Exception as exc:
                        for _, future in batch:
                            if not future.done():
                                future.set_exception(exc)
                        continue
                    for (_, future), result in zip(batch, results, strict=True):
                        if not future.done():
                            future.set_result(result)
        finally:
            self._running.discard(account_id)
            if self._queues.get(account_id):  # queued while this task was ending
                self._running.add(account_id)
                asyncio.create_task(self._drain(account_id))  # noqa: RUF006


@dataclass(frozen=True)
class HoldResult:
    refusal: str | None  # None, "insufficient_credits" or "key_limit_reached"
    available_nanos: int | None


@dataclass(frozen=True)
class Charged:
    charged_nanos: int
    topup_nanos: int
    bonus_nanos: int


class Ledger:
    """The proxy's two writes: holds and settlements, each group-committed."""

    SETTLE_RETRIES = 3

    def __init__(
        self,
        pool: AsyncConnectionPool,
        on_autotopup_due: Callable[[int], None] = lambda account_id: None,
    ):
        self.pool = pool
        self.on_autotopup_due = on_autotopup_due
        self.holds = AccountBatcher(self._hold_many)
        self.settlements = AccountBatcher(self._settle_many)

    async def hold(self, account_id: int, item: dict) -> HoldResult:
        return await self.holds.submit(account_id, item)

    async def settle(self, account_id: int, item: dict) -> Charged:
        """Queue a finished request (its log fields, hold and cost) and wait
        until it is committed."""
        return await self.settlements.submit(account_id, item)

    async def _hold_many(self, account_id: int, items: list[dict]) -> list[HoldResult]:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT refusal, available FROM proxy_hold_many(%s, %s)",
                [account_id, Jsonb(items)],
            )
            return [HoldResult(*row) for row in await cursor.fetchall()]

    async def _settle_many(self, account_id: int, items: list[dict]) -> list[Charged]:
        entry_key = f"usage:{uuid.uuid4()}"
        description = f"API usage: {len(items)} request{'s' if len(items) > 1 else ''}"
        for attempt in range(1, self.SETTLE_RETRIES + 1):
            try:
                async with self.pool.connection() as conn:
                    cursor = await conn.execute(
                        "SELECT charged, from_topup, from_bonus, autotopup_due "
                        "FROM proxy_settle_many(%s, %s, %s, %s)",
                        [account_id, Jsonb(items), entry_key, description],
                    )
                    rows = await cursor.fetchall()
                break
            except Exception:
                # A retry is safe: settled holds are skipped and logs are
                # written once. Holds of a batch that never commits are
                # released by the sweep.
                logger.exception(
                    "settling %d requests failed (try %d)", len(items), attempt
                )
                if attempt == self.SETTLE_RETRIES:
                    raise
                await asyncio.sleep(0.05 * attempt)
        if rows and rows[0][3]:
            self.on_autotopup_due(account_id)
        return [Charged(*row[:3]) for row in rows]
