"""The program's rules that need no database: codes, what counts as the same
email, and what a reward may pay under the monthly cap."""

from __future__ import annotations

import secrets
from datetime import datetime

# Lowercase letters and digits without the ones read alike (0/o, 1/l/i): a
# code survives being read aloud or typed from a screenshot.
ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
# 31^10 ≈ 8 × 10^14 codes (~49 bits): short enough to share, too many to find
# one by guessing (and a guessed code only names a referrer).
CODE_LENGTH = 10

# Google's domains that deliver to the same mailbox, dots in the name or not.
GMAIL_DOMAINS = ("gmail.com", "googlemail.com")


def code_new() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def code_clean(value: str) -> str:
    """A code as typed or linked, in the form it is stored in."""
    return (value or "").strip().lower()


def email_normalised(email: str) -> str:
    """The mailbox an address reaches: lowercase, without a ``+tag``, and for
    Gmail without dots and with googlemail.com read as gmail.com."""
    local, _, domain = (email or "").strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in GMAIL_DOMAINS:
        local = local.replace(".", "")
        domain = GMAIL_DOMAINS[0]
    return f"{local}@{domain}"


def month_start(now: datetime) -> datetime:
    """The start of ``now``'s calendar month (UTC, as ``now`` is)."""
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def reward_under_cap(*, reward_nanos: int, cap_nanos: int, earned_nanos: int) -> int:
    """What a reward pays when the referrer was already granted
    ``earned_nanos`` this month: all of it, or what is left under the cap
    (so the cap is reached exactly), or nothing."""
    return max(min(reward_nanos, cap_nanos - earned_nanos), 0)
