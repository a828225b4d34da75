"""Run the whole platform: migrations, then the ASGI server, a Celery worker and
Celery beat, supervised together (one stops, all stop), and when they have
stopped, the embedded PostgreSQL if that is the database (see agipower/embedded.py).
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from agipower.embedded import embedded_database_in_use, embedded_database_stop

# What uvicorn waits for requests in flight when told to stop, before it cuts
# them and shuts the application down (below the 15 s serve waits for it).
GRACEFUL_SHUTDOWN_SECONDS = 10


def web_command(
    *,
    host: str,
    port: int,
    workers: int,
    graceful_seconds: int = GRACEFUL_SHUTDOWN_SECONDS,
) -> list[str]:
    """The web server, as serve runs it (and the tests that start the platform).

    The ASGI lifespan is on: at startup each worker opens the proxy's pool, and
    at shutdown it gives its leases of credits back at once, instead of leaving
    them held until they expire. proxy/app.py answers the lifespan messages
    itself; Django's ASGI handler, behind it, has none.
    """
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "agipower.asgi:application",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--lifespan",
        "on",
        "--timeout-graceful-shutdown",
        str(graceful_seconds),
    ]


def is_loopback(host: str) -> bool:
    """Whether the server listening on host is reachable from this machine only."""
    host = host.strip().removeprefix("[").removesuffix("]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name other than localhost, or nothing (every address)
        return False


def local_stripe_refusal(host: str, *, stripe_local: bool) -> str | None:
    """Why serve must not start (None when it may): STRIPE_LOCAL=1 signs
    webhooks with a secret published in the source (billing/payments/
    localstripe.py), so on an address others reach anyone could sign a
    payment_intent.succeeded and be given credits."""
    if not stripe_local or is_loopback(host):
        return None
    return (
        f"STRIPE_LOCAL=1 serves on loopback addresses only (127.0.0.1, ::1, "
        f"localhost), not on {host or 'every address'!r}: its webhook secret is "
        "public in the source, so anyone who reaches this server could sign a "
        "payment_intent.succeeded webhook and be given credits. Set HOST to "
        "127.0.0.1, or use real Stripe keys instead of STRIPE_LOCAL."
    )


class Command(BaseCommand):
    help = "Migrate, then run the web server, a Celery worker and beat."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument(
            "--port", type=int, default=int(os.environ.get("PORT", "8000"))
        )
        # One web worker per two cores: PostgreSQL needs the others, and a hot
        # account's batches commit faster from fewer workers (bench/proxy.py).
        parser.add_argument(
            "--web-workers",
            type=int,
            default=int(
                os.environ.get("WEB_WORKERS", max(1, (os.cpu_count() or 2) // 2))
            ),
        )

    def load_catalog_once(self):
        """The shipped catalog, on the first start only: afterwards operators
        own the catalog (admin, or load_catalog)."""
        from proxy.models import CatalogModel

        if not CatalogModel.objects.exists():
            call_command(
                "load_catalog", str(settings.BASE_DIR / "proxy" / "catalog.yaml")
            )

    def start_local_stripe(self, host: str, port: int) -> subprocess.Popen:
        """STRIPE_LOCAL=1: the local Stripe of test payments, its webhooks sent
        to this server (billing/localstripe.py)."""
        from billing.payments.localstripe import local_stripe_serve

        site = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104
        site = f"[{site}]" if ":" in site else site
        server = local_stripe_serve(
            port=settings.STRIPE_LOCAL_PORT,
            state=settings.VAR_DIR / "localstripe.pickle",
            webhook_url=f"http://{site}:{port}/stripe/webhook/",
        )
        self.stdout.write(
            f"Test payments, no real money: a local Stripe at "
            f"{settings.STRIPE_API_BASE} (card 4242 4242 4242 4242)"
        )
        return server.process

    def stop_embedded_database(self):
        """The embedded PostgreSQL stops with the rest, unless another process
        (a shell, the tests) still uses it."""
        pgdata = embedded_database_in_use()
        if pgdata is None:
            return
        connections.close_all()
        if embedded_database_stop(pgdata.parent):
            self.stdout.write(f"Stopped the embedded PostgreSQL ({pgdata})")
        else:
            self.stdout.write(
                f"The embedded PostgreSQL ({pgdata}) is still used by another "
                "process; `scripts/run stop` stops it"
            )

    def handle(self, *args, **options):
        try:
            self.serve(**options)
        finally:
            self.stop_embedded_database()

    def serve(self, *, host, port, web_workers, **options):
        if refusal := local_stripe_refusal(host, stripe_local=settings.STRIPE_LOCAL):
            raise CommandError(refusal)
        call_command("migrate", interactive=False, verbosity=1)
        call_command("collectstatic", interactive=False, verbosity=0)
        call_command("ensure_operator")
        self.load_catalog_once()
        python = sys.executable
        commands = {
            "web": web_command(host=host, port=port, workers=web_workers),
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "agipower",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "2",
            ],
            "beat": [
                python,
                "-m",
                "celery",
                "-A",
                "agipower",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                settings.CELERY_BEAT_SCHEDULE_FILENAME,
            ],
        }
        # First: if it cannot start (its port is taken), nothing else has.
        local_stripe = (
            self.start_local_stripe(host, port) if settings.STRIPE_LOCAL else None
        )
        children = {name: subprocess.Popen(cmd) for name, cmd in commands.items()}  # noqa: S603
        if local_stripe is not None:
            children["stripe"] = local_stripe
        self.stdout.write(f"AGIPower is up: http://{host}:{port}/ (Ctrl-C stops it)")

        def stop(*_):
            for child in children.values():
                if child.poll() is None:
                    child.terminate()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            while all(child.poll() is None for child in children.values()):
                time.sleep(0.5)
        finally:
            stop()
            for child in children.values():
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
        failed = [
            name for name, child in children.items() if child.returncode not in (0, -15)
        ]
        if failed:
            sys.exit(f"stopped because {', '.join(failed)} exited")
