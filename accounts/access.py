"""The signed-in user's billing account, for console views and API views alike.

Every user has an account (``accounts.receivers``), so there is no "no account"
page or answer: a view that works on the user's account gets it through one of
these two, which both ask ``accounts.selectors.account_for_user``.
"""

from __future__ import annotations

from functools import cached_property, wraps

from django.contrib.auth.decorators import login_required

from accounts.models import Account
from accounts.selectors import account_for_user


def account_required(view):
    """A console view of the user's account: signs in first (``login_required``),
    then calls ``view(request, account, *args, **kwargs)``."""

    @wraps(view)
    @login_required
    def wrapped(request, *args, **kwargs):
        return view(request, account_for_user(request.user), *args, **kwargs)

    return wrapped


class AccountRequired:
    """A REST API view (DRF) of the user's account: ``self.account``, once DRF
    has authenticated the request (the session or a management key) and its
    ``IsAuthenticated`` permission has let it through."""

    @cached_property
    def account(self) -> Account:
        return account_for_user(self.request.user)
