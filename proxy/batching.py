"""The proxy's writes to the ledger: leases of credit, group-committed.

Every change to an account takes its wallet row lock until its commit ends, so
a hot account commits one transaction at a time. Two things keep the proxy off
that lock:

- **Leases.** Each worker holds some of an account's credits (a hold row of its
  own) and admits requests against it in memory, with no database write. When
  the lease runs short the worker grows it; when it sits unused it is given
  back. The database never lets leases and holds together exceed the balance,
  so concurrent requests on every worker can never spend more than it.
- **Group commit.** A worker's finished requests, and its lease changes, queue
  per account, and one task per account commits everything queued as one
  ``proxy_batch`` statement (``proxy/sql/proxy_v1.sql``, which settles through
  billing's ``billing_batch`` and writes the request logs), then the next
  batch. A request awaits its own batch: when it is answered, its cost is
  committed.

Requests of keys with a credit limit hold on their own instead (a hold row
each, ``proxy_hold_many`` over billing's ``billing_hold_many``), because their
limit is counted per key.

Batches run in tasks of their own: a request cancelled by a client that went
away still has its settlement committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

logger = logging.getLogger(__name__)

MAX_BATCH = 500


def _dumps(value) -> str:
    return orjson.dumps(value).decode()


class AccountBatcher:
    """Queues items per account; ``commit(account_id, items)`` answers one
    result per item, in order. One batch per account at a time."""

    def __init__(self, commit: Callable[[int, list], Awaitable[list]]):
        self.commit = commit
        self._queues: dict[int, list[tuple[object, asyncio.Future]]] = {}
        self._running: set[int] = set()

    def busy(self, account_id: int) -> bool:
        return account_id in self._running or bool(self._queues.get(account_id))

    async def submit(self, account_id: int, item):
        future = asyncio.get_running_loop().create_future()
        self._queues.setdefault(account_id, []).append((item, future))
        if account_id not in self._running:
            self._running.add(account_id)
            asyncio.create_task(self._drain(account_id))  # noqa: RUF006 - in _running
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
class Admission:
    """A request let in (``refusal`` None), or why not."""

    refusal: str | None  # "insufficient_credits" or "key_limit_reached"
    available_nanos: int = 0
    hold_id: uuid.UUID | None = None  # its own hold (keys with a credit limit)
    leased_nanos: int = 0  # what it took from the worker's lease


@dataclass(frozen=True)
class Charged:
    charged_nanos: int
    topup_nanos: int
    bonus_nanos: int


@dataclass
class _Lease:
    id: str | None = None
    amount: int = 0  # as the database has it (or less, while giving back)
    in_use: int = 0  # taken by requests in flight on this worker
    last_used: float = field(default_factory=time.monotonic)
    renewed: float = field(default_factory=time.monotonic)  # its expiry, last

    @property
    def free(self) -> int:
        return self.amount - self.in_use


@dataclass(frozen=True)
class _Grow:
    amount: int


@dataclass(frozen=True)
class _Settle:
    item: dict
    leased: int


class Ledger:
    """Admission (against the lease) and settlement of one worker's requests."""

    SETTLE_RETRIES = 3

    def __init__(
        self,
        pool: AsyncConnectionPool,
        *,
        lease_want_nanos: int,
        lease_idle_seconds: float,
        lease_ttl: timedelta,
        on_autotopup_due: Callable[[int], None] = lambda account_id: None,
    ):
        self.pool = pool
        self.lease_want = lease_want_nanos
        self.lease_idle_seconds = lease_idle_seconds
        self.lease_ttl = lease_ttl
        self.on_autotopup_due = on_autotopup_due
        self.leases: dict[int, _Lease] = {}
        self.batches = AccountBatcher(self._commit)
        self.holds = AccountBatcher(self._hold_many)
        self._idle_task: asyncio.Task | None = None

    # --- admission ------------------------------------------------------------

    async def admit(
        self, account_id: int, amount: int, *, own_hold: dict | None = None
    ) -> Admission:
        """Let a request that may cost ``amount`` in, or refuse it. With
        ``own_hold`` (a key with a credit limit) the request holds on its own."""
        if own_hold is not None:
            return await self.holds.submit(account_id, own_hold)
        self._watch_idle()
        lease = self.leases.setdefault(account_id, _Lease())
        lease.last_used = time.monotonic()
        if lease.free >= amount:
            lease.in_use += amount
            return Admission(None, leased_nanos=amount)
        # The batch takes this request's share of the grown lease for it.
        admitted, available = await self.batches.submit(account_id, _Grow(amount))
        if admitted:
            return Admission(None, leased_nanos=amount)
        return Admission("insufficient_credits", available_nanos=available)

    async def settle(self, account_id: int, item: dict, *, leased: int) -> Charged:
        """Queue a finished request (its log fields, and its own hold or what it
        took from the lease, and its cost) and wait until it is committed."""
        item = dict(item, lease=leased > 0 or item.get("hold") is None)
        return await self.batches.submit(account_id, _Settle(item, leased))

    # --- the batch ------------------------------------------------------------

    async def _commit(self, account_id: int, work: list) -> list:
        lease = self.leases.setdefault(account_id, _Lease())
        settles = [w for w in work if isinstance(w, _Settle)]
        grows = [w for w in work if isinstance(w, _Grow) and w.amount > 0]
        # The waiting requests' shares are taken now, before the lease grows,
        # so that requests admitted meanwhile cannot use what they wait for.
        reserved = sum(g.amount for g in grows)
        lease.in_use += reserved
        need = max(lease.in_use - lease.amount, 0)
        smallest = min((g.amount for g in grows), default=0) if need else 0
        want = need + self.lease_want if need else 0
        give_back = 0
        if not grows and lease.in_use == 0 and self._idle(lease):
            give_back = lease.amount
        # From here the lease is smaller: admissions meanwhile see what is left.
        lease.amount -= give_back
        expires = datetime.now(UTC) + self.lease_ttl
        items = [s.item for s in settles]
        try:
            answer = await self._run_batch(
                account_id, lease, items, give_back, need, smallest, want, expires
            )
        except BaseException:
            lease.in_use -= reserved
            raise
        finally:
            # Finished either way: a request whose settlement failed is over too
            # (it was answered with an error), so its share of the lease is free.
            for settle in settles:
                lease.in_use -= settle.leased
        lease.id = answer["lease"]
        lease.amount = answer["lease_amount"]
        lease.renewed = time.monotonic()
        # If the balance could not cover every waiting request, the last ones
        # are refused until the rest fit the lease.
        refused = set()
        for grow in reversed(grows):
            if lease.in_use <= lease.amount:
                break
            lease.in_use -= grow.amount
            refused.add(id(grow))
        if answer["autotopup_due"]:
            self.on_autotopup_due(account_id)
        available = answer["available"] + max(lease.free, 0)
        charged = iter(answer["items"])
        return [
            Charged(*next(charged))
            if isinstance(w, _Settle)
            else (id(w) not in refused, available)
            for w in work
        ]

    _BATCH_SQL = "SELECT proxy_batch(" + ", ".join(["%s"] * 11) + ")"

    async def _run_batch(
        self, account_id, lease, items, give_back, need, smallest, want, expires
    ):
        key = uuid.uuid4().hex  # a retried batch is recognised by its key
        description = f"API usage: {len(items)} request{'s' if len(items) != 1 else ''}"
        attempts = self.SETTLE_RETRIES if items else 1
        for attempt in range(1, attempts + 1):
            try:
                async with self.pool.connection() as conn:
                    cursor = await conn.execute(
                        self._BATCH_SQL,
                        [
                            account_id,
                            lease.id,
                            Jsonb(items, dumps=_dumps),
                            give_back,
                            need,
                            smallest,
                            want,
                            expires,
                            key,
                            description,
                            attempt > 1,  # it may have committed: look
                        ],
                    )
                    (answer,) = await cursor.fetchone()
                    return answer
            except Exception:
                # A retry is safe: settled holds are skipped and logs are
                # written once; a lease of a batch that never committed is
                # released by the sweep when it expires.
                logger.exception("ledger batch failed (try %d)", attempt)
                if attempt == attempts:
                    raise
                await asyncio.sleep(0.05 * attempt)
        raise AssertionError("unreachable")

    async def _hold_many(self, account_id: int, items: list[dict]) -> list[Admission]:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT refusal, available FROM proxy_hold_many(%s, %s)",
                [account_id, Jsonb(items, dumps=_dumps)],
            )
            rows = await cursor.fetchall()
        return [
            Admission(
                refusal,
                available or 0,
                hold_id=None if refusal else uuid.UUID(item["hold"]),
            )
            for item, (refusal, available) in zip(items, rows, strict=True)
        ]

    # --- giving leases back -----------------------------------------------------

    def _idle(self, lease: _Lease) -> bool:
        return time.monotonic() - lease.last_used >= self.lease_idle_seconds

    def _watch_idle(self) -> None:
        if self._idle_task is None or self._idle_task.done():
            self._idle_task = asyncio.create_task(self._give_back_idle())

    async def _give_back_idle(self) -> None:
        """Give back leases nobody on this worker has used for a while, so that
        they do not sit apart from the account's other workers, or show as held."""
        renew_every = self.lease_ttl.total_seconds() / 3
        while self.leases:
            await asyncio.sleep(min(self.lease_idle_seconds / 2, renew_every))
            for account_id, lease in list(self.leases.items()):
                if self.batches.busy(account_id):
                    continue  # its batch renews it, and may be growing it
                if lease.in_use or not self._idle(lease):
                    # In use by long requests and no batch lately: renew its
                    # expiry, or the sweep would release it under them.
                    if lease.amount and time.monotonic() - lease.renewed > renew_every:
                        await self._nudge(account_id)
                    continue
                if lease.amount == 0:
                    del self.leases[account_id]
                    continue
                await self._nudge(account_id)

    async def _nudge(self, account_id: int) -> None:
        """A batch with nothing in it: it renews the lease, or gives it back
        when it is idle."""
        try:
            await self.batches.submit(account_id, _Grow(0))
        except Exception:
            logger.exception("renewing the lease of %s failed", account_id)

    async def close(self) -> None:
        """Give every lease back (a worker shutting down)."""
        if self._idle_task is not None:
            self._idle_task.cancel()
        for account_id, lease in list(self.leases.items()):
            if lease.amount and not lease.in_use:
                lease.last_used = 0
                try:
                    await self.batches.submit(account_id, _Grow(0))
                except Exception:
                    logger.exception("giving back the lease of %s failed", account_id)
