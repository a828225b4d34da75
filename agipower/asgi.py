"""The ASGI application: ``/v1`` is served by the proxy's own ASGI callable,
everything else by Django.

Django's connections are lent from a pool here (``DB_POOL_MAX_SIZE`` per
process; psycopg_pool, as Django supports it): under ASGI every request runs in
a thread of its own, so a persistent connection (``CONN_MAX_AGE``) is never
reused and each request would open one (several ms, a PostgreSQL process
started and its catalog read anew); the pool lends a warm one and takes it back
when the request ends. A request that finds them all lent waits for one (30 s
at most). Only the web server pools: Celery's worker forks its processes and
closes connections around every task (a pool opened before the fork, as its
startup checks would, would be shared with every child), and commands and the
tests' threads each want a connection of their own.
"""

import os

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agipower.settings")
if settings.DB_POOL_MAX_SIZE:
    # Before Django connects: the pool replaces persistent connections.
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    settings.DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(2, settings.DB_POOL_MAX_SIZE),
        "max_size": settings.DB_POOL_MAX_SIZE,
    }
django_application = get_asgi_application()

from proxy.app import ProxyApp  # noqa: E402 - needs Django set up first

application = ProxyApp(fallback=django_application)
