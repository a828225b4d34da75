from __future__ import annotations

from django.db import transaction

from accounts.models import Account, BillingProfile, User
from billing.services import wallet_open


@transaction.atomic
def user_signup(*, email: str, password: str, full_name: str = "") -> User:
    """A new customer: the user, the billing account and its empty wallet."""
    user = User.objects.create_user(email=email, password=password, full_name=full_name)
    account_open(owner=user)
    return user


@transaction.atomic
def account_open(*, owner: User, name: str = "") -> Account:
    account = Account.objects.create(owner=owner, name=name)
    wallet_open(account=account)
    return account


@transaction.atomic
def billing_profile_save(*, account: Account, **fields) -> BillingProfile:
    """Create or replace the account's billing profile (invoices keep their own
    snapshot, so earlier invoices do not change)."""
    profile, _ = BillingProfile.objects.update_or_create(
        account=account, defaults=fields
    )
    return profile
