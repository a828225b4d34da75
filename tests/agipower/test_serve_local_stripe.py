"""STRIPE_LOCAL=1 signs webhooks with a secret that is public in the source:
serve refuses to listen anywhere but on a loopback address in that mode
(agipower/management/commands/serve.py)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from agipower.management.commands.serve import local_stripe_refusal

EVERY_ADDRESS = "0.0.0.0"  # noqa: S104


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST"]
)
def test_local_stripe_serves_on_a_loopback_address(host):
    assert local_stripe_refusal(host, stripe_local=True) is None


@pytest.mark.parametrize(
    "host", [EVERY_ADDRESS, "::", "", "192.168.1.20", "10.0.0.5", "example.com"]
)
def test_local_stripe_refuses_an_address_others_reach(host):
    refusal = local_stripe_refusal(host, stripe_local=True)
    assert refusal is not None
    assert "STRIPE_LOCAL=1" in refusal and "loopback" in refusal
    assert "webhook secret is public" in refusal


@pytest.mark.parametrize("host", [EVERY_ADDRESS, "192.168.1.20", "127.0.0.1"])
def test_real_stripe_serves_on_any_address(host):
    assert local_stripe_refusal(host, stripe_local=False) is None


def test_serve_stops_before_doing_anything(settings, monkeypatch):
    settings.STRIPE_LOCAL = True
    ran = []
    monkeypatch.setattr(
        "agipower.management.commands.serve.call_command",
        lambda *args, **kwargs: ran.append(args),
    )
    monkeypatch.setattr(
        "agipower.management.commands.serve.Command.stop_embedded_database",
        lambda self: None,
    )
    with pytest.raises(CommandError, match="loopback"):
        call_command("serve", host=EVERY_ADDRESS)
    assert ran == []  # not even migrate
