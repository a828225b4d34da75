"""Content-Security-Policy: the policy in settings, plus Stripe.js's origins.

Stripe.js is loaded from ``STRIPE_JS_URL`` and talks to ``STRIPE_API_BASE``;
their origins are read from the settings on every response, so a local Stripe
(the tests' localstripe and its Stripe.js stand-in) is allowed exactly like
Stripe's own. With Stripe's own Stripe.js, its frames (card fields, 3-D Secure)
come from ``*.js.stripe.com`` and ``hooks.stripe.com``, as Stripe documents.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings

STRIPE_JS_ORIGIN = "https://js.stripe.com"


def origin(url: str) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL, else None."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def stripe_sources() -> dict[str, list[str]]:
    """What each directive must add to let Stripe.js work."""
    js = origin(settings.STRIPE_JS_URL)
    api = origin(settings.STRIPE_API_BASE)
    sources: dict[str, list[str]] = {
        "script-src": [],
        "frame-src": [],
        "connect-src": [],
        "img-src": [],
    }
    if js:
        sources["script-src"].append(js)
        sources["frame-src"].append(js)
        sources["connect-src"].append(js)
    if api:
        sources["connect-src"].append(api)
    if js == STRIPE_JS_ORIGIN:
        sources["script-src"].append("https://*.js.stripe.com")
        sources["frame-src"] += ["https://*.js.stripe.com", "https://hooks.stripe.com"]
        sources["img-src"].append("https://*.stripe.com")
    return {name: values for name, values in sources.items() if values}


class StripeAwareCSPMiddleware(CSPMiddleware):
    def get_policy_parts(self, request, response, report_only=False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if report_only:
            return parts
        update = dict(parts.update or {})
        for name, values in stripe_sources().items():
            extra = update.get(name) or []
            if isinstance(extra, str):
                extra = [extra]
            update[name] = [*values, *extra]
        parts.update = update
        return parts
