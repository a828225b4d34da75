"""Login throttling in the shared cache.

Failed sign-ins are counted per email address and per client address. After
``LOGIN_FAILURE_LIMIT`` failures for an email, or ``LOGIN_ADDRESS_FAILURE_LIMIT``
from one address (higher: many people may share one, behind a NAT), in a window
of ``LOGIN_FAILURE_WINDOW`` (which opens at the first failure), further attempts
for that email, or from that address, are refused without checking the password
until the window ends.

A successful sign-in clears the email's counter, and forgives that email's
failures from that address: a customer who mistyped a password and then got it
right is no burden on colleagues behind the same NAT. Failures for other emails
stay counted, so one's own account cannot be used to reset a password spray.

Password reset requests are counted the same way, in counters of their own:
every request counts (whether or not the email has an account, so a refusal
tells nothing about which emails exist). After ``PASSWORD_RESET_LIMIT``
requests for an email, or ``PASSWORD_RESET_ADDRESS_LIMIT`` from one address,
within ``PASSWORD_RESET_WINDOW``, no further reset email is sent until the
window ends.

Only digests of email addresses go into cache keys; passwords never come here.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache

_PREFIX = "login-fail"
_RESET_PREFIX = "reset-req"


@dataclass(frozen=True)
class Refusal:
    """Why a sign-in is refused, and for how long still."""

    retry_after_seconds: int

    @property
    def retry_after_minutes(self) -> int:
        return max(1, math.ceil(self.retry_after_seconds / 60))


def login_refusal(*, email: str, ip: str | None) -> Refusal | None:
    """A Refusal if this email or client address has failed too often."""
    waits = [
        _Window(name).retry_after(
            settings.LOGIN_ADDRESS_FAILURE_LIMIT
            if name.startswith("ip:")
            else settings.LOGIN_FAILURE_LIMIT
        )
        for name in _names(email=email, ip=ip)
    ]
    waits = [wait for wait in waits if wait is not None]
    return Refusal(retry_after_seconds=max(waits)) if waits else None


def login_failed(*, email: str, ip: str | None) -> None:
    """Count a failed sign-in (wrong email or password)."""
    for name in _names(email=email, ip=ip, pair=True):
        _Window(name).hit()


def login_succeeded(*, email: str, ip: str | None) -> None:
    """Clear the email's failures, and forgive them in the address's count."""
    _Window(_email_name(email)).forget()
    if not ip:
        return
    pair = _Window(_pair_name(email, ip))
    forgiven = pair.count()
    pair.forget()
    if forgiven:
        _Window(_ip_name(ip)).take(forgiven)


def reset_refusal(*, email: str, ip: str | None) -> Refusal | None:
    """A Refusal if this email or client address asked for too many resets."""
    waits = [
        _reset_window(name).retry_after(
            settings.PASSWORD_RESET_ADDRESS_LIMIT
            if name.startswith("ip:")
            else settings.PASSWORD_RESET_LIMIT
        )
        for name in _names(email=email, ip=ip)
    ]
    waits = [wait for wait in waits if wait is not None]
    return Refusal(retry_after_seconds=max(waits)) if waits else None


def reset_requested(*, email: str, ip: str | None) -> None:
    """Count a password reset request (sent, or for an unknown email)."""
    for name in _names(email=email, ip=ip):
        _reset_window(name).hit()


def _reset_window(name: str) -> _Window:
    return _Window(name, prefix=_RESET_PREFIX, window=settings.PASSWORD_RESET_WINDOW)


def _names(*, email: str, ip: str | None, pair: bool = False) -> list[str]:
    names = [_email_name(email)]
    if ip:
        names.append(_ip_name(ip))
        if pair:
            names.append(_pair_name(email, ip))
    return names


def _digest(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


def _email_name(email: str) -> str:
    return f"email:{_digest(email)}"


def _ip_name(ip: str) -> str:
    return f"ip:{ip}"


def _pair_name(email: str, ip: str) -> str:
    return f"pair:{ip}:{_digest(email)}"


class _Window:
    """A counter that lives for one window, opened by its first hit.

    The window's opening time is stored under one key (written with ``add``, so
    concurrent first hits agree on it) and the count under a key named after
    that opening time. Expiry therefore never depends on whether a cache
    backend's ``incr`` keeps a key's timeout (the file cache's does not).
    """

    def __init__(
        self, name: str, *, prefix: str = _PREFIX, window: timedelta | None = None
    ):
        self.opened_key = f"{prefix}:{name}:opened"
        window = settings.LOGIN_FAILURE_WINDOW if window is None else window
        self.seconds = max(1, int(window.total_seconds()))

    def _count_key(self, opened: int) -> str:
        return f"{self.opened_key}:{opened}"

    def _opened(self) -> int | None:
        opened = cache.get(self.opened_key)
        if opened is None or opened + self.seconds <= time.time():
            return None
        return opened

    def hit(self) -> int:
        cache.add(self.opened_key, int(time.time()), self.seconds)
        opened = self._opened()
        if opened is None:  # the window closed between the two calls
            opened = int(time.time())
            cache.set(self.opened_key, opened, self.seconds)
        key = self._count_key(opened)
        cache.add(key, 0, self.seconds)
        try:
            return cache.incr(key)
        except ValueError:  # expired just now
            cache.set(key, 1, self.seconds)
            return 1

    def count(self) -> int:
        opened = self._opened()
        if opened is None:
            return 0
        return cache.get(self._count_key(opened), 0)

    def take(self, n: int) -> None:
        opened = self._opened()
        if opened is None:
            return
        key = self._count_key(opened)
        # Never below zero: that would grant extra attempts.
        n = min(n, cache.get(key, 0))
        if n > 0:
            with contextlib.suppress(ValueError):  # expired just now
                cache.decr(key, n)

    def forget(self) -> None:
        opened = cache.get(self.opened_key)
        if opened is not None:
            # The count too: a window reopened within the same second would
            # otherwise find it again.
            cache.delete_many([self.opened_key, self._count_key(opened)])

    def retry_after(self, limit: int) -> int | None:
        """Seconds until the window ends, if its count reached the limit."""
        opened = self._opened()
        if opened is None or cache.get(self._count_key(opened), 0) < limit:
            return None
        return max(1, math.ceil(opened + self.seconds - time.time()))
