"""The ASGI application: ``/v1`` is served by the proxy's own ASGI callable,
everything else by Django."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agipower.settings")
django_application = get_asgi_application()

from proxy.app import ProxyApp  # noqa: E402 - needs Django set up first

application = ProxyApp(fallback=django_application)
