"""Group commit of debits: one lock and one commit for all waiting debits of an
account.

Every debit of an account takes the account's wallet lock until its commit
ends, so one hot account runs one transaction at a time. When callers in a
process debit the same account at once, the first one (the leader) sends
everything queued for that account as one ``balance_debit_many`` statement;
those who arrive meanwhile queue up, and when the commit ends the first of them
leads the next batch. A caller returns only once its own debit is committed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from accounts.models import Account
from billing.errors import BillingError
from billing.ledger.services import Debit, DebitRequest, balance_debit_many


@dataclass
class _Waiting:
    request: DebitRequest
    # Set once: when the debit is committed (done) or when asked to lead.
    wake: threading.Event = field(default_factory=threading.Event)
    done: bool = False
    outcome: Debit | BaseException | None = None


class DebitGroupCommitter:
    def __init__(self, *, max_batch: int = 256):
        self.max_batch = max_batch
        self._mutex = threading.Lock()
        self._queues: dict[int, list[_Waiting]] = {}
        self._leading: set[int] = set()

    def debit(self, *, account: Account, request: DebitRequest) -> Debit:
        """Debit like ``balance_debit``; raises its errors (InsufficientCredits…)."""
        me = _Waiting(request)
        with self._mutex:
            self._queues.setdefault(account.pk, []).append(me)
            leads = account.pk not in self._leading
            if leads:
                self._leading.add(account.pk)
        if not leads:
            me.wake.wait()
        if not me.done:
            # The queue's first caller leads its batch, which holds its own debit.
            self._lead_one_batch(account)
        if isinstance(me.outcome, BaseException):
            raise me.outcome
        return me.outcome

    def _lead_one_batch(self, account: Account) -> None:
        with self._mutex:
            queue = self._queues[account.pk]
            batch, self._queues[account.pk] = (
                queue[: self.max_batch],
                queue[self.max_batch :],
            )
        try:
            outcomes: list[Debit | BillingError] = balance_debit_many(
                account=account, debits=[waiting.request for waiting in batch]
            )
        except Exception as exc:  # the whole statement failed: tell every caller
            outcomes = [exc] * len(batch)
        for waiting, outcome in zip(batch, outcomes, strict=True):
            waiting.outcome = outcome
            waiting.done = True
            waiting.wake.set()
        with self._mutex:
            queue = self._queues[account.pk]
            if queue:
                queue[0].wake.set()
            else:
                del self._queues[account.pk]
                self._leading.discard(account.pk)
