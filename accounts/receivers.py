"""Every user has a billing account, however the user was made.

A ``post_save`` of User is the one place that sees them all: ``create_user``
and ``create_superuser`` (signup, ``ensure_operator``, ``createsuperuser``)
and the admin's add form, which saves a ``User`` itself without the manager.
"""

from __future__ import annotations

from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.models import User
from accounts.services import account_open


@receiver(post_save, sender=User, dispatch_uid="accounts.account_for_new_user")
def account_for_new_user(sender, instance: User, created: bool, raw: bool, **kwargs):
    # raw: a fixture being loaded brings its own rows.
    if created and not raw:
        account_open(owner=instance)
