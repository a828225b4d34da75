from __future__ import annotations

from accounts.models import Account, User
from accounts.services import account_open


def account_for_user(user: User) -> Account:
    """The user's billing account. Every user has one (accounts.receivers); a
    user whose row was written around ``save()`` (``bulk_create``, SQL) gets it
    here rather than a 500."""
    try:
        return Account.objects.get(owner=user)
    except Account.DoesNotExist:
        return account_open(owner=user)


def account_by_email(email: str) -> Account:
    return Account.objects.select_related("owner").get(
        owner__email__iexact=email.strip()
    )
