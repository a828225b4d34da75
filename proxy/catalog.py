"""The catalog as the hot path sees it: every active model with its provider
and price versions, read in one query and kept for a few seconds; and the
``GET /v1/models`` answer made from it. (Operators write the catalog in admin
or from its YAML form: ``proxy.catalog_import``.)"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime

from psycopg_pool import AsyncConnectionPool

from money import usd_plain
from proxy.pricing import Price


@dataclass(frozen=True)
class Upstream:
    name: str
    base_url: str
    api_key_env: str
    connect_timeout: float
    read_timeout: float

    @property
    def api_key(self) -> str:
        return os.environ.get(self.api_key_env, "") if self.api_key_env else ""


@dataclass(frozen=True)
class Model:
    id: str
    upstream_name: str
    kind: str
    context_length: int
    max_output_tokens: int
    tokenizer: str
    # The most prompt tokens one image may cost: the hold counts this per image.
    image_tokens_max: int
    created: datetime
    provider: Upstream
    # (effective_from, price), newest first
    prices: tuple[tuple[datetime, Price], ...]

    def price_at(self, when: datetime) -> Price | None:
        for effective_from, price in self.prices:
            if effective_from <= when:
                return price
        return None


CATALOG_SQL = """
    SELECT m.id, m.upstream, m.kind, m.context_length, m.max_output_tokens,
           m.tokenizer, m.image_tokens_max, m.created_at, p.name, p.base_url,
           p.api_key_env, p.connect_timeout_seconds, p.read_timeout_seconds,
           coalesce(array_agg(mp.effective_from ORDER BY mp.effective_from DESC)
                    FILTER (WHERE mp.id IS NOT NULL), '{}'),
           coalesce(array_agg(ARRAY[mp.input_nanos, mp.cached_input_nanos,
                                    mp.cache_write_nanos, mp.output_nanos, mp.id]
                              ORDER BY mp.effective_from DESC)
                    FILTER (WHERE mp.id IS NOT NULL), '{}')
      FROM proxy_catalogmodel m
      JOIN proxy_provider p ON p.id = m.provider_id
      LEFT JOIN proxy_modelprice mp ON mp.model_id = m.id
     WHERE m.active
     GROUP BY m.id, p.id
"""


async def catalog_read(pool: AsyncConnectionPool) -> dict[str, Model]:
    """Every active model, by id, with its provider and price versions."""
    async with pool.connection() as conn:
        cursor = await conn.execute(CATALOG_SQL)
        rows = await cursor.fetchall()
    providers: dict[str, Upstream] = {}
    models = {}
    for row in rows:
        (model_id, upstream, kind, context_length, max_output, tokenizer,
         image_tokens_max, created,
         provider_name, base_url, key_env, connect_timeout, read_timeout,
         effective, prices) = row  # fmt: skip
        provider = providers.setdefault(
            provider_name,
            Upstream(
                provider_name,
                base_url.rstrip("/"),
                key_env,
                connect_timeout,
                read_timeout,
            ),
        )
        models[model_id] = Model(
            id=model_id,
            upstream_name=upstream,
            kind=kind,
            context_length=context_length,
            max_output_tokens=max_output,
            tokenizer=tokenizer,
            image_tokens_max=image_tokens_max,
            created=created,
            provider=provider,
            prices=tuple(
                (when, Price(*price))
                for when, price in zip(effective, prices, strict=True)
            ),
        )
    return models


def models_answer(models: dict[str, Model], now: datetime) -> bytes:
    """``GET /v1/models``: every model that has a price at ``now``, by id."""
    data = []
    for model in sorted(models.values(), key=lambda m: m.id):
        price = model.price_at(now)
        if price is None:
            continue
        data.append(
            {
                "id": model.id,
                "object": "model",
                "created": int(model.created.timestamp()),
                "owned_by": model.provider.name,
                "type": model.kind,
                "context_length": model.context_length,
                "max_output_tokens": model.max_output_tokens,
                "pricing": {
                    "unit": "USD per 1M tokens",
                    "input": usd_plain(price.input),
                    "cached_input": usd_plain(price.cached_input),
                    "cache_write": usd_plain(price.cache_write),
                    "output": usd_plain(price.output),
                },
            }
        )
    return json.dumps({"object": "list", "data": data}).encode()
