"""The named world's building blocks: the password everyone signs in with,
fresh customers, unique keys, and the one way tests give credits (``grant``,
through the service production uses)."""

from __future__ import annotations

import itertools
from datetime import datetime

from accounts.models import Account, User
from accounts.services import user_signup
from billing.ledger.grants import credit_grant
from billing.models import LedgerEntry, LotSource
from money import usd_to_nanos

PASSWORD = "correct horse battery staple"

_keys = itertools.count()
_emails = itertools.count()


def new_key(prefix: str = "test") -> str:
    """A string no other call returns in this test process (idempotency keys)."""
    return f"{prefix}-{next(_keys)}"


def new_account() -> Account:
    """A customer with an empty wallet and an email no other test uses."""
    user = user_signup(email=f"customer-{next(_emails)}@example.com", password=PASSWORD)
    return user.account


def grant(
    owner: Account | User,
    amount: int | str,
    source: str = LotSource.GIFT,
    *,
    reason: str | None = None,
    expires_at: datetime | None = None,
    pool: str | None = None,
    idempotency_key: str | None = None,
) -> LedgerEntry:
    """Give ``owner`` (an account, or a user's account) credits through
    ``credit_grant``: ``amount`` in nanos, or in dollars as a string ("10.02").
    A new idempotency key each call unless one is given."""
    account = owner.account if isinstance(owner, User) else owner
    return credit_grant(
        account=account,
        source=source,
        amount_nanos=(
            usd_to_nanos(amount, signed=True) if isinstance(amount, str) else amount
        ),
        reason=reason or f"test {source}",
        actor=None,
        idempotency_key=idempotency_key or new_key(str(source)),
        pool=pool,
        expires_at=expires_at,
    )
