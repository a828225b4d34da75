"""Debits: credits taken from what is available, in the spending order, one
journal entry each (negative adjustments by operators).

One SQL statement per call (``billing_debit_many``): on a hot account the
wallet lock is then held for one statement and its commit, not for a
conversation with Python. Requests of the proxy are charged by settlement
instead (``billing.ledger.holds``).
"""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import Account, User
from billing.errors import (
    BillingError,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidAmount,
)
from billing.ledger.functions import sql_call
from billing.ledger.models import EntryKind, LedgerEntry, Pool
from billing.ledger.validation import amount_check, choice_check
from money import format_usd


@dataclass(frozen=True)
class Debit:
    entry_id: int
    replayed: bool

    @property
    def entry(self) -> LedgerEntry:
        return LedgerEntry.objects.get(pk=self.entry_id)


@dataclass(frozen=True)
class DebitRequest:
    amount_nanos: int
    idempotency_key: str
    description: str = ""
    reference: str = ""


def balance_debit(
    *,
    account: Account,
    amount_nanos: int,
    idempotency_key: str,
    description: str = "",
    reference: str = "",
    kind: EntryKind | str = EntryKind.USAGE,
    actor: User | None = None,
    pool: Pool | str | None = None,
) -> Debit:
    """Debit what is available (total minus held) in the spending order.

    One SQL statement, atomic on its own; refused with InsufficientCredits,
    writing nothing, if the balance does not cover it.
    """
    (outcome,) = balance_debit_many(
        account=account,
        debits=[DebitRequest(amount_nanos, idempotency_key, description, reference)],
        kind=kind,
        actor=actor,
        pool=pool,
    )
    if isinstance(outcome, BillingError):
        raise outcome
    return outcome


def balance_debit_many(
    *,
    account: Account,
    debits: list[DebitRequest],
    kind: EntryKind | str = EntryKind.USAGE,
    actor: User | None = None,
    pool: Pool | str | None = None,
) -> list[Debit | BillingError]:
    """Several debits of one account under one lock and one commit.

    Each gets its own journal entry, or is refused on its own (the error is
    returned in its place, nothing of it written); the others go through.
    """
    kind = choice_check(EntryKind, kind, "kind")
    if kind in (EntryKind.TOPUP, EntryKind.BONUS, EntryKind.EXPIRY):
        raise InvalidAmount(f"a {kind} entry is never a debit")
    pool = choice_check(Pool, pool, "pool") if pool else None
    for debit in debits:
        amount_check(debit.amount_nanos, allow_negative=False)
        if not debit.idempotency_key:
            raise InvalidAmount("an idempotency key is required")
    rows = sql_call(
        "SELECT entry_id, replayed, error, available "
        "FROM billing_debit_many(%s, %s, %s, %s, %s, %s, %s, %s)",
        [
            account.pk,
            kind,
            [d.amount_nanos for d in debits],
            [d.idempotency_key for d in debits],
            [d.description[:500] for d in debits],
            [d.reference[:200] for d in debits],
            actor.pk if actor else None,
            pool,
        ],
    )
    return [
        _debit_outcome(debit, *row) for debit, row in zip(debits, rows, strict=True)
    ]


def insufficient(available: int, needed: int) -> InsufficientCredits:
    return InsufficientCredits(
        f"insufficient credits: {format_usd(available, 9)} available, "
        f"{format_usd(needed, 9)} needed",
        available_nanos=available,
        needed_nanos=needed,
    )


def _debit_outcome(
    debit: DebitRequest, entry_id, replayed: bool, error: str | None, available: int
) -> Debit | BillingError:
    if error is None:
        return Debit(entry_id, replayed)
    if error == InsufficientCredits.code:
        return insufficient(available, debit.amount_nanos)
    if error.startswith("idempotency key"):
        return IdempotencyConflict(error)
    return InvalidAmount(error)
