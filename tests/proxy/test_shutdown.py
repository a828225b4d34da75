"""A web server told to stop gives back what its workers hold, at once: the
ASGI lifespan is on (serve's web_command), and the proxy answers it."""

from __future__ import annotations

import signal
import urllib.request

import openai
import pytest
from django.db import connections

from billing.ledger.reconciliation import ledger_check
from billing.ledger.selectors import balance_get
from billing.models import Hold, HoldState
from tests.support.platform import PlatformProcess, database_url

pytestmark = pytest.mark.django_db(transaction=True)


def test_sigterm_gives_the_worker_s_lease_back_at_once(alice, alice_key, upstream):
    server = PlatformProcess(
        database_url=database_url(connections["default"].settings_dict),
        env={
            "FAKE_UPSTREAM_KEY": "sk-upstream-test",
            # The lease would otherwise go back after a second unused; its
            # expiry (the sweep's business) is far away.
            "PROXY_LEASE_IDLE_SECONDS": "600",
            "PROXY_LEASE_TTL_SECONDS": "600",
        },
    )
    with server:
        client = openai.OpenAI(
            base_url=server.base_url, api_key=alice_key.secret, max_retries=0
        )
        client.chat.completions.create(
            model="fake/gpt",
            messages=[{"role": "user", "content": "#upstream completion_tokens=5"}],
        )
        # Django, behind the proxy, serves its pages with the lifespan on.
        with urllib.request.urlopen(f"{server.url}/admin/login/") as page:  # noqa: S310
            assert page.status == 200
        lease = Hold.objects.get(account=alice.account, state=HoldState.ACTIVE)
        assert lease.reference == "lease"
        assert balance_get(account=alice.account).held_nanos == lease.amount_nanos > 0

        server.stop()  # SIGTERM, and wait for the process to end

        # No waiting: the lease was given back before the process ended.
        assert balance_get(account=alice.account).held_nanos == 0
        lease.refresh_from_db()
        assert lease.state == HoldState.RELEASED
        assert ledger_check() == []
        # Uvicorn ends with the signal it was stopped by, once shut down.
        assert server.proc.returncode == -signal.SIGTERM
        assert "Application shutdown complete" in server.output()
