"""A local Stripe for trying payments with no Stripe account and no internet,
and for the tests: localstripe (a Stripe emulator from PyPI) bound to
127.0.0.1, with Stripe.js's stand-in at ``/js.stripe.com/v3/``.

``STRIPE_LOCAL=1`` (settings) points the platform at it with the test keys
below, and ``manage.py serve`` starts it and registers the webhook. No real
money moves: the console shows a "Test payments" banner.

Run as ``python -m billing.payments.localstripe --port N`` (0 picks a free port); it
prints ``listening on http://127.0.0.1:PORT`` once it answers.
``LocalStripe()`` does that from Python, with ``--exit-on-stdin-eof`` so that
a parent that dies leaves no server behind.

What it changes in localstripe (whose CLI listens on every interface and
pickles its state to a fixed file under /tmp):

- state in memory only, or in the file given by ``--state`` (``serve`` keeps
  it under ``var/`` so that saved cards outlive a restart);
- ``GET /v1/account``: a minimal account, which dj-stripe reads to learn whose
  objects it mirrors;
- ``DELETE /_config/webhooks/<id>``: forget an endpoint;
- webhooks go to the endpoints registered both when the event happened and
  when it is sent (~1 s later, as localstripe does), so a test never receives
  a previous test's events, nor a later test its own;
- ``GET /_config/deliveries``: the number of webhook posts in flight, so a
  test can wait for them before its database is emptied.

This module imports nothing from Django: settings read its keys.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ACCOUNT_ID = "acct_localstripe0000000"
WEBHOOK_DELAY_SECONDS = 1.0
# Test keys shaped like Stripe's (dj-stripe checks the shape). They open
# nothing but the local emulator.
SECRET_KEY = "sk_test_" + "AgiPowerLocalStripe00001"
PUBLISHABLE_KEY = "pk_test_" + "AgiPowerLocalStripe00001"
WEBHOOK_SECRET = "whsec_" + "AgiPowerLocalStripeWebhook01"
WEBHOOK_PATH = "/stripe/webhook/"
_ROOT = Path(__file__).resolve().parents[2]

logger = logging.getLogger("billing.payments.localstripe")


# --- the server (in the subprocess) -------------------------------------------


def _state_keep(resources, state: Path | None) -> None:
    """Keep localstripe's objects in ``state`` (written after each change, as
    localstripe does, but atomically), or in memory only."""
    if state is None:
        resources.Store.dump_to_disk = lambda self: None
        resources.Store.try_load_from_disk = lambda self: None
        return

    def dump(self) -> None:
        partial = state.with_suffix(".tmp")
        with open(partial, "wb") as file:
            pickle.dump(dict(self), file, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(partial, state)

    def load(self) -> None:
        try:
            with open(state, "rb") as file:
                saved = pickle.load(file)  # noqa: S301 (our own file)
        except FileNotFoundError:
            return
        except Exception:  # another localstripe version's file: start afresh
            logger.warning("local Stripe: %s is unreadable, starting empty", state)
            return
        dict.clear(self)
        dict.update(self, saved)

    resources.Store.dump_to_disk = dump
    resources.Store.try_load_from_disk = load
    resources.store.try_load_from_disk()


def _patched_app(webhook_delay: float, state: Path | None = None):
    import aiohttp
    from aiohttp import web
    from localstripe import resources, server, webhooks

    _state_keep(resources, state)

    in_flight = 0

    async def deliver(event, targets) -> None:
        nonlocal in_flight
        payload = json.dumps(event._export(), indent=2, sort_keys=True).encode()
        signed = b"%d.%s" % (event.created, payload)
        await asyncio.sleep(webhook_delay)
        for webhook in targets:
            if webhook not in webhooks._webhooks.values():
                continue  # unregistered since the event happened
            if webhook.events is not None and event.type not in webhook.events:
                continue
            signature = hmac.new(
                webhook.secret.encode(), signed, hashlib.sha256
            ).hexdigest()
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": f"t={event.created},v1={signature}",
            }
            in_flight += 1
            try:
                async with (
                    aiohttp.ClientSession() as session,
                    session.post(webhook.url, data=payload, headers=headers) as r,
                ):
                    logger.info("webhook %s -> %s", event.type, r.status)
            except aiohttp.ClientError as exc:
                logger.info("webhook %s failed: %s", event.type, exc)
            finally:
                in_flight -= 1

    def schedule_webhook(event) -> None:
        targets = list(webhooks._webhooks.values())
        if targets:
            asyncio.ensure_future(deliver(event, targets))

    # resources imported the function by name: replace it there.
    resources.schedule_webhook = schedule_webhook

    async def account(request):
        return web.json_response(
            {
                "id": ACCOUNT_ID,
                "object": "account",
                "business_profile": {"name": "AGIPower (localstripe)", "url": None},
                "business_type": "company",
                "capabilities": {"card_payments": "active", "transfers": "active"},
                "charges_enabled": True,
                "country": "US",
                "created": 1_700_000_000,
                "default_currency": "usd",
                "details_submitted": True,
                "email": "payments@localhost",
                "metadata": {},
                "payouts_enabled": True,
                "settings": {"dashboard": {"display_name": "AGIPower (localstripe)"}},
                "type": "standard",
            }
        )

    async def webhook_forget(request):
        webhooks._webhooks.pop(request.match_info["id"], None)
        return web.Response()

    async def deliveries(request):
        return web.json_response({"in_flight": in_flight})

    app = server.app
    app.router.add_get("/v1/account", account)
    app.router.add_delete("/_config/webhooks/{id}", webhook_forget)
    app.router.add_get("/_config/deliveries", deliveries)
    return app


async def _serve(port: int, webhook_delay: float, state: Path | None) -> None:
    from aiohttp import web

    runner = web.AppRunner(_patched_app(webhook_delay, state), access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    site = web.SockSite(runner, sock)
    await site.start()
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


def _exit_when_stdin_closes() -> None:
    sys.stdin.read()
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--webhook-delay", type=float, default=WEBHOOK_DELAY_SECONDS)
    parser.add_argument(
        "--state", type=Path, default=None, help="keep the objects in this file"
    )
    parser.add_argument(
        "--exit-on-stdin-eof",
        action="store_true",
        help="stop when standard input closes (when the parent process ends)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    if args.exit_on_stdin_eof:
        threading.Thread(target=_exit_when_stdin_closes, daemon=True).start()
    asyncio.run(_serve(args.port, args.webhook_delay, args.state))


# --- the client (in the parent process) ----------------------------------------


class LocalStripe:
    """A localstripe subprocess for as long as the ``with`` block lasts (or
    from ``start()`` to ``stop()``)."""

    def __init__(
        self,
        *,
        port: int = 0,
        state: Path | None = None,
        startup_timeout: float = 20.0,
    ):
        self.port = port
        self.state = state
        self.startup_timeout = startup_timeout
        self.api_base = ""
        self._process: subprocess.Popen | None = None
        self._log = None

    @property
    def js_url(self) -> str:
        return f"{self.api_base}/js.stripe.com/v3/"

    def start(self) -> LocalStripe:
        # LOCALSTRIPE_LOG=/some/file keeps the server's log (requests, webhooks).
        log_path = os.environ.get("LOCALSTRIPE_LOG") or os.devnull
        self._log = open(log_path, "a")  # noqa: SIM115 (open while it runs)
        state = ["--state", str(self.state)] if self.state else []
        self._process = subprocess.Popen(  # noqa: S603 (our own module)
            [
                sys.executable,
                "-m",
                "billing.payments.localstripe",
                "--port",
                str(self.port),
                "--exit-on-stdin-eof",
                *state,
            ],
            cwd=_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        line = self._first_line()
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"localstripe did not start: {line!r}")
        self.api_base = line.removeprefix("listening on ").strip()
        self.port = int(self.api_base.rsplit(":", 1)[1])
        return self

    @property
    def process(self) -> subprocess.Popen | None:
        return self._process

    def _first_line(self) -> str:
        result: list[str] = []
        reader = threading.Thread(
            target=lambda: result.append(self._process.stdout.readline()),
            daemon=True,
        )
        reader.start()
        reader.join(self.startup_timeout)
        return result[0] if result else ""

    def stop(self) -> None:
        if self._process is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()  # the server exits on this
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LocalStripe:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- localstripe's configuration API ---

    def _request(self, method: str, path: str, data: dict | None = None) -> bytes:
        body = None
        if data is not None:
            body = urllib.parse.urlencode(data, doseq=True).encode()
        request = urllib.request.Request(  # noqa: S310 (our own http server)
            self.api_base + path, data=body, method=method
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.read()

    def register_webhook(
        self,
        url: str,
        secret: str,
        events: list[str] | None = None,
        *,
        webhook_id: str = "tests",
    ) -> str:
        """Send events (all, or the types listed) to ``url``, signed with
        ``secret``. Returns the id to ``unregister_webhook`` with."""
        data: dict = {"url": url, "secret": secret}
        if events:
            data["events[]"] = list(events)
        self._request("POST", f"/_config/webhooks/{webhook_id}", data)
        return webhook_id

    def unregister_webhook(self, webhook_id: str = "tests") -> None:
        self._request("DELETE", f"/_config/webhooks/{webhook_id}")

    def deliveries_in_flight(self) -> int:
        return json.loads(self._request("GET", "/_config/deliveries"))["in_flight"]

    def deliveries_wait(self, timeout: float = 10.0) -> None:
        """Wait until no webhook post is in flight."""
        deadline = time.monotonic() + timeout
        while self.deliveries_in_flight() and time.monotonic() < deadline:
            time.sleep(0.05)

    def flush(self) -> None:
        """Forget every object (registered webhooks stay)."""
        self._request("DELETE", "/_config/data")


def local_stripe_serve(*, port: int, state: Path, webhook_url: str) -> LocalStripe:
    """The local Stripe of the test payments mode (``STRIPE_LOCAL=1``): on
    127.0.0.1:``port``, its objects kept in ``state``, its events posted to
    ``webhook_url`` signed with ``WEBHOOK_SECRET`` (the secret settings use in
    that mode)."""
    state.parent.mkdir(parents=True, exist_ok=True)
    server = LocalStripe(port=port, state=state).start()
    try:
        server.register_webhook(webhook_url, WEBHOOK_SECRET, webhook_id="agipower")
    except Exception:
        server.stop()
        raise
    return server


if __name__ == "__main__":
    main()
