from __future__ import annotations

from django.db import transaction

from accounts.models import Account, BillingProfile, User


@transaction.atomic
def user_signup(*, email: str, password: str, full_name: str = "") -> User:
    """A new customer: the user and (by ``account_open``, which runs for every
    new user) its billing account. Billing opens the account's wallet."""
    return User.objects.create_user(email=email, password=password, full_name=full_name)


@transaction.atomic
def account_open(*, owner: User, name: str = "") -> Account:
    """The user's billing account, made if it has none yet.

    Runs for every user when the user is first saved (accounts.receivers), so
    that users made with ``createsuperuser``, the admin's add form or
    ``create_user`` have an account like those who signed up. Billing opens the
    account's wallet when the account is made (billing.receivers)."""
    account, _ = Account.objects.get_or_create(owner=owner, defaults={"name": name})
    return account


@transaction.atomic
def billing_profile_save(*, account: Account, **fields) -> BillingProfile:
    """Create or replace the account's billing profile (invoices keep their own
    snapshot, so earlier invoices do not change)."""
    profile, _ = BillingProfile.objects.update_or_create(
        account=account, defaults=fields
    )
    return profile
