"""Every page sends a Content-Security-Policy that allows scripts and styles
from this site (and Stripe.js from where settings say) and nothing inline; the
pages themselves carry no inline script or event handler. /favicon.ico exists."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from apikeys.services import key_create

STRIPE_LOCAL = "http://127.0.0.1:8420"


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


class _Inline(HTMLParser):
    """Inline scripts, inline styles and on*= handlers in a page."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=…>")
        if tag == "script" and not attrs.get("src"):
            self._in_inline_script = True
        if tag == "style":
            self.found.append("<style>")
        if "style" in attrs:
            self.found.append(f"<{tag} style=…>")
        for name in ("href", "src", "action", "formaction"):
            if (attrs.get(name) or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}=javascript:…>")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_inline_script = False

    def handle_data(self, data):
        if self._in_inline_script and data.strip():
            self.found.append(f"<script>{data.strip()[:40]}…")


def inline_parts(html: str) -> list[str]:
    parser = _Inline()
    parser.feed(html)
    parser.close()
    return parser.found


@pytest.fixture
def pages(alice, ops):
    """(client, path) of the console, sign-in, admin and API docs pages."""
    from django.test import Client

    key = key_create(account=alice.account, name="prod").api_key
    anonymous, customer, operator = Client(), Client(), Client()
    customer.force_login(alice)
    operator.force_login(ops)
    return [
        (anonymous, "/login"),
        (anonymous, "/signup"),
        (anonymous, "/password-reset"),
        (anonymous, "/admin/login/"),
        (anonymous, "/api/docs/"),
        (customer, "/console/pay-as-you-go"),
        (customer, "/console/billing"),
        (customer, "/console/keys"),
        (customer, "/console/keys/new"),
        (customer, f"/console/keys/{key.pk}"),
        (customer, f"/console/keys/{key.pk}/edit"),
        (customer, f"/console/keys/{key.pk}/delete"),
        (operator, "/admin/"),
        (operator, "/admin/accounts/account/"),
        (operator, f"/admin/accounts/account/{alice.account.pk}/change/"),
        (operator, f"/admin/accounts/account/{alice.account.pk}/grant/"),
        (operator, "/admin/billing/ledgerentry/"),
        (operator, "/admin/apikeys/apikey/"),
        (operator, f"/admin/apikeys/apikey/{key.pk}/change/"),
    ]


def test_every_page_sends_a_policy_without_inline_scripts(pages):
    for client, path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        directives = policy(response)
        assert directives["default-src"] == ["'self'"], path
        assert directives["object-src"] == ["'none'"], path
        assert directives["frame-ancestors"] == ["'none'"], path
        assert directives["base-uri"] == ["'self'"], path
        for name in ("script-src", "style-src"):
            assert directives[name][0] == "'self'", (path, name)
            assert "'unsafe-inline'" not in directives[name], (path, name)
            assert "'unsafe-eval'" not in directives[name], (path, name)
            assert "*" not in directives[name], (path, name)


def test_pages_carry_no_inline_script_style_or_handler(pages, settings):
    # Django's change list writes one cosmetic <style> only for a ModelAdmin
    # that turns off both actions_on_top and actions_on_bottom; none of ours.
    for client, path in pages:
        html = client.get(path).content.decode()
        assert inline_parts(html) == [], path


def test_the_inline_finder_finds_what_it_looks_for():
    found = inline_parts(
        '<script>alert(1)</script><script src="/a.js"></script>'
        '<button onclick="x()">b</button><p style="color:red">'
        '<a href="javascript:void(0)">a</a><style>p{}</style>'
    )
    assert found == [
        "<script>alert(1)…",
        "<button onclick=…>",
        "<p style=…>",
        "<a href=javascript:…>",
        "<style>",
    ]


def test_stripe_js_is_allowed_from_stripe_by_default(client, settings):
    settings.STRIPE_JS_URL = "https://js.stripe.com/v3/"
    settings.STRIPE_API_BASE = "https://api.stripe.com"

    directives = policy(client.get("/login"))

    assert directives["script-src"] == [
        "'self'",
        "https://js.stripe.com",
        "https://*.js.stripe.com",
    ]
    assert directives["frame-src"] == [
        "https://js.stripe.com",
        "https://*.js.stripe.com",
        "https://hooks.stripe.com",
    ]
    assert directives["connect-src"] == [
        "'self'",
        "https://js.stripe.com",
        "https://api.stripe.com",
    ]
    assert "https://*.stripe.com" in directives["img-src"]


def test_stripe_origins_follow_the_settings(client, settings):
    # The local Stripe of the tests serves its Stripe.js stand-in itself.
    settings.STRIPE_JS_URL = f"{STRIPE_LOCAL}/js.stripe.com/v3/"
    settings.STRIPE_API_BASE = STRIPE_LOCAL

    header = client.get("/login")["Content-Security-Policy"]
    directives = policy(client.get("/login"))

    assert directives["script-src"] == ["'self'", STRIPE_LOCAL]
    assert directives["frame-src"] == [STRIPE_LOCAL]
    assert directives["connect-src"] == ["'self'", STRIPE_LOCAL]
    assert "stripe.com" not in header


def test_favicon(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert response.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert "max-age=86400" in response["Cache-Control"]
    assert client.post("/favicon.ico").status_code == 405
