from __future__ import annotations

from accounts.models import Account, User


def account_for_user(user: User) -> Account:
    return Account.objects.get(owner=user)


def account_by_email(email: str) -> Account:
    return Account.objects.select_related("owner").get(
        owner__email__iexact=email.strip()
    )
