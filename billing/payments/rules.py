"""What a top-up may be: its amount, its bonus, where Stripe may send the
customer back to. Plain checks, shared by top-ups and auto top-up."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlsplit

from django.conf import settings

from billing.errors import BillingError, InvalidAmount
from money import NANOS_PER_USD, ceil_div, format_usd, percent_of

NANOS_PER_CENT = NANOS_PER_USD // 100
MIN_TOPUP_NANOS = 5 * NANOS_PER_USD
MAX_TOPUP_NANOS = 25_000 * NANOS_PER_USD
CURRENCY = "usd"


class BillingProfileMissing(BillingError):
    code = "billing_profile_required"


class TopUpRefused(BillingError):
    code = "top_up_refused"


class InvalidReturnUrl(BillingError):
    code = "invalid_return_url"


def topup_amount_check(amount_nanos: int) -> None:
    if isinstance(amount_nanos, bool) or not isinstance(amount_nanos, int):
        raise InvalidAmount("amount: must be a USD amount")
    if amount_nanos % NANOS_PER_CENT:
        raise InvalidAmount("amount: must be whole cents")
    if not MIN_TOPUP_NANOS <= amount_nanos <= MAX_TOPUP_NANOS:
        raise InvalidAmount(
            f"amount: a top-up is between {format_usd(MIN_TOPUP_NANOS)} and "
            f"{format_usd(MAX_TOPUP_NANOS)}"
        )


def bonus_for(amount_nanos: int) -> int:
    return percent_of(amount_nanos, Decimal(settings.BONUS_RATE))


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, parts.hostname or "", port


def return_url_check(url: str | None) -> str | None:
    """Where Stripe sends the customer after a redirect (Alipay) must be this
    site (``SITE_URL``'s origin): never another host, a scheme-relative
    ``//host`` or a ``javascript:`` address, so a payment page cannot be made
    to lead elsewhere."""
    if url is None or url == "":
        return None
    site = settings.SITE_URL
    refused = InvalidReturnUrl(
        f"return_url: must be an address on this site ({site.rstrip('/')}/...)"
    )
    if not isinstance(url, str) or len(url) > 2000:
        raise refused
    # Browsers read a backslash as a slash and drop tabs and newlines, so an
    # address that parses as ours here could lead elsewhere there.
    if any(ch == "\\" or ch.isspace() or not ch.isprintable() for ch in url):
        raise refused
    try:
        parts = urlsplit(url)
        origin = _origin(url)
    except ValueError:  # a port that is no number
        raise refused from None
    if (
        parts.username is not None
        or parts.password is not None
        or origin[0] not in ("http", "https")
        or origin != _origin(site)
    ):
        raise refused
    return url


def refund_fee_nanos(refundable_nanos: int) -> int:
    """The fee kept when a customer takes a payment back themselves (a fresh
    top-up, an unused gift card): ``SELF_REFUND_FEE_RATE`` of what is
    refundable, in whole cents rounded up (by exact fractions), never more
    than it. ``refundable_nanos`` is whole cents."""
    numerator, denominator = Decimal(settings.SELF_REFUND_FEE_RATE).as_integer_ratio()
    cents = ceil_div(refundable_nanos // NANOS_PER_CENT * numerator, denominator)
    return min(cents * NANOS_PER_CENT, refundable_nanos)


def refund_fee_percent() -> str:
    """The fee rate as the pages show it ("5")."""
    return format((Decimal(settings.SELF_REFUND_FEE_RATE) * 100).normalize(), "f")
