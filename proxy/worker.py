"""What a web worker keeps for ``/v1`` from one request to the next: its
database pool, its pooled HTTP client for upstream, its ledger (leases of
credits and settle batches, ``proxy.batching``) and the caches of keys and of
the catalog. Opened at the ASGI lifespan's startup (or by the first request),
closed at its shutdown, which gives the worker's leases back."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

import aiohttp
from django.conf import settings

from proxy.batching import Ledger
from proxy.caches import TtlCache
from proxy.call import KeyInfo
from proxy.catalog import Model
from proxy.db import pool_open

logger = logging.getLogger(__name__)

AUTOTOPUP_ASK_SECONDS = 5.0


class ProxyWorker:
    def __init__(self):
        self._ready = asyncio.Lock()
        self.pool = None
        self.http: aiohttp.ClientSession | None = None
        self.keys: TtlCache[KeyInfo | None] = TtlCache(settings.PROXY_KEY_CACHE_SECONDS)
        self.catalog: TtlCache[dict[str, Model]] = TtlCache(
            settings.PROXY_CATALOG_CACHE_SECONDS
        )
        self.ledger: Ledger | None = None
        self._autotopup_asked: dict[int, float] = {}

    async def lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def start(self):
        async with self._ready:
            if self.pool is not None:
                return
            pool = pool_open(
                min_size=settings.PROXY_DB_POOL_MIN, max_size=settings.PROXY_DB_POOL_MAX
            )
            await pool.open()
            self.http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
                auto_decompress=False,
                skip_auto_headers=["User-Agent"],
            )
            self.ledger = Ledger(
                pool,
                lease_want_nanos=settings.PROXY_LEASE_NANOS,
                lease_idle_seconds=settings.PROXY_LEASE_IDLE_SECONDS,
                lease_ttl=timedelta(seconds=settings.PROXY_LEASE_TTL_SECONDS),
                on_autotopup_due=self.autotopup_due,
            )
            self.pool = pool

    def autotopup_due(self, account_id: int) -> None:
        """Ask a Celery worker to top the account up, at most every few seconds
        per account from this worker (the task itself charges at most once)."""
        now = time.monotonic()
        if self._autotopup_asked.get(account_id, 0) > now:
            return
        self._autotopup_asked[account_id] = now + AUTOTOPUP_ASK_SECONDS
        from billing.tasks import autotopup_run

        loop = asyncio.get_running_loop()
        asked = loop.run_in_executor(None, autotopup_run.delay, account_id)
        asked.add_done_callback(
            lambda done: (
                done.exception()
                and logger.error(
                    "auto top-up of %s not queued: %s", account_id, done.exception()
                )
            )
        )

    async def stop(self):
        if self.ledger is not None:
            await self.ledger.close()
        if self.http is not None:
            await self.http.close()
        if self.pool is not None:
            await self.pool.close()
