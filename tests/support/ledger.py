"""Reading the ledger in tests: dollars in nanos, a wallet's pools, a lot's
remainder, an entry's movements, counts of every ledger table (to prove that
nothing was written), and the whole-ledger check that money tests end with."""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import Account
from billing.ledger.reconciliation import ledger_check
from billing.ledger.selectors import balance_get, breakdown_get
from billing.models import CreditLot, Hold, LedgerEntry, LotMovement, Wallet

USD = 1_000_000_000


def lot_of(entry: LedgerEntry) -> CreditLot:
    return CreditLot.objects.get(entry=entry)


def remaining(lot: CreditLot) -> int:
    return CreditLot.objects.values_list("remaining_nanos", flat=True).get(pk=lot.pk)


def wallet_of(account: Account) -> tuple[int, int, int]:
    """(top-up, bonus, held) as the wallet row says now."""
    wallet = Wallet.objects.get(account=account)
    return wallet.topup_nanos, wallet.bonus_nanos, wallet.held_nanos


def movements_of(entry: LedgerEntry | int) -> dict[int, int]:
    """{lot id: delta} of an entry. A dict, not a list: the rows of one entry
    carry no order (the spending order shows in which lots were taken, and how
    much of each)."""
    entry_id = entry if isinstance(entry, int) else entry.pk
    return dict(
        LotMovement.objects.filter(entry_id=entry_id).values_list(
            "lot_id", "delta_nanos"
        )
    )


@dataclass(frozen=True)
class Counts:
    entries: int
    lots: int
    movements: int
    holds: int
    wallets: tuple


def counts() -> Counts:
    """Everything the ledger could have written, to prove that nothing was."""
    return Counts(
        entries=LedgerEntry.objects.count(),
        lots=CreditLot.objects.count(),
        movements=LotMovement.objects.count(),
        holds=Hold.objects.count(),
        wallets=tuple(
            Wallet.objects.order_by("account_id").values_list(
                "account_id", "topup_nanos", "bonus_nanos", "held_nanos"
            )
        ),
    )


def assert_ledger_whole(*accounts: Account) -> None:
    """Every invariant of the ledger holds: no drift anywhere, and for each
    given account the credits breakdown sums to the wallet's total, nothing is
    negative and held stays within the total."""
    assert ledger_check() == []
    for account in accounts:
        balance = balance_get(account=account)
        breakdown = breakdown_get(account=account)
        assert breakdown["total"] == balance.total_nanos
        assert (
            sum(v for k, v in breakdown.items() if k != "total") == breakdown["total"]
        )
        assert balance.topup_nanos >= 0
        assert balance.bonus_nanos >= 0
        assert 0 <= balance.held_nanos <= balance.total_nanos
    assert not CreditLot.objects.filter(remaining_nanos__lt=0).exists()
