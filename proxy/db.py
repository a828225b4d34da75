"""The proxy's own async PostgreSQL pool: the same database as Django's ORM,
reached without Django's per-request thread hand-off."""

from __future__ import annotations

from django.db import connections
from psycopg_pool import AsyncConnectionPool

_CONNECTION_KEYS = ("dbname", "user", "password", "host", "port", "sslmode", "options")


def connection_kwargs() -> dict:
    params = connections["default"].get_connection_params()
    kwargs = {k: v for k, v in params.items() if k in _CONNECTION_KEYS and v}
    kwargs["autocommit"] = True  # each of the proxy's statements commits itself
    return kwargs


def pool_open(*, min_size: int, max_size: int) -> AsyncConnectionPool:
    return AsyncConnectionPool(
        kwargs=connection_kwargs(),
        min_size=min_size,
        max_size=max_size,
        open=False,
        name="proxy",
    )
