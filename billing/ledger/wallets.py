"""Wallets: one row per account with its balances, the row every change of the
account locks."""

from __future__ import annotations

from accounts.models import Account
from billing.ledger.models import Wallet


def wallet_open(*, account: Account) -> Wallet:
    wallet, _ = Wallet.objects.get_or_create(account=account)
    return wallet


def wallet_lock(account: Account) -> Wallet:
    """The account's wallet, locked until the transaction ends: taken first by
    every change of the account (``billing_wallet_lock`` in SQL)."""
    try:
        return Wallet.objects.select_for_update().get(account=account)
    except Wallet.DoesNotExist:
        # Opened with the account (billing.receivers); an account made around
        # save() gets its wallet on first use.
        wallet_open(account=account)
        return Wallet.objects.select_for_update().get(account=account)
