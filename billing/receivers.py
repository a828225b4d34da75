"""Billing opens a wallet for every new account.

Accounts sit on a floor below billing and know nothing of wallets; billing
listens for a new account instead, so that the wallet exists before anything
can lock it (the proxy's SQL holds and the ledger's debits lock the wallet row
and count on it being there)."""

from __future__ import annotations

from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.models import Account
from billing.ledger.wallets import wallet_open


@receiver(post_save, sender=Account, dispatch_uid="billing.wallet_for_new_account")
def wallet_for_new_account(
    sender, instance: Account, created: bool, raw: bool, **kwargs
):
    if created and not raw:
        wallet_open(account=instance)
