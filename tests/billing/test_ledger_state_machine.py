"""A stateful property test of the ledger: random grants, top-ups, holds,
settlements, releases, sweeps, debits, expiries and reversals on one account,
against a plain Python model of its lots, pools and holds.

After every step the wallet equals the model, every lot holds what the model
says, ledger_check() finds no drift and the breakdown sums to the balance.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from billing.errors import InsufficientCredits, ReversalRefused
from billing.ledger.debits import balance_debit
from billing.ledger.expiry import lots_expire_due
from billing.ledger.grants import credit_grant, topup_credit
from billing.ledger.holds import (
    hold_place,
    hold_release,
    hold_settle,
    holds_sweep_stale,
)
from billing.ledger.reconciliation import ledger_check
from billing.ledger.reversals import entry_reverse
from billing.ledger.selectors import balance_get, breakdown_get
from billing.models import (
    CreditLot,
    EntryKind,
    Hold,
    HoldState,
    LedgerEntry,
    LotSource,
    Pool,
)
from money import percent_of
from tests.support.ledger import movements_of
from tests.support.world import new_account, new_key

amounts = st.integers(min_value=1, max_value=2_000)
GRANT_SOURCES = [
    LotSource.GIFT,
    LotSource.REFERRAL,
    LotSource.COMPENSATION,
    LotSource.ADJUSTMENT,
]
# How far ahead an expiry run looks: a few days (grants' own expiries), or
# past a top-up bonus's BONUS_EXPIRY_DAYS.
EXPIRY_HORIZONS = [timedelta(days=d) for d in (1, 3, 6)] + [timedelta(days=400)]


@dataclass
class ModelLot:
    id: int
    pool: str
    expires_at: datetime | None
    remaining: int


@dataclass
class ModelEntry:
    id: int
    kind: str
    moves: dict[int, int]  # lot id -> delta
    reversal_of: int | None = None
    reversed_by: int | None = None


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.account = new_account()
        self.lots: dict[int, ModelLot] = {}
        self.active: dict[object, int] = {}  # hold id -> amount
        self.stale: set[object] = set()  # active holds placed already expired
        self.closed: list[object] = []  # released or swept holds, not settled
        self.entries: dict[int, ModelEntry] = {}
        self.debits: list[tuple[str, int, int]] = []  # key, amount, entry id
        self.start = timezone.now()

    # --- the model ----------------------------------------------------------------

    def pool_total(self, pool: str) -> int:
        return sum(lot.remaining for lot in self.lots.values() if lot.pool == pool)

    @property
    def total(self) -> int:
        return self.pool_total(Pool.TOPUP) + self.pool_total(Pool.BONUS)

    @property
    def held(self) -> int:
        return sum(self.active.values())

    @property
    def available(self) -> int:
        return self.total - self.held

    def spend(self, amount: int, pool: str | None = None) -> dict[int, int]:
        """Take ``amount`` from the lots in the spending order; the moves."""
        order = sorted(
            (
                lot
                for lot in self.lots.values()
                if lot.remaining > 0 and (pool is None or lot.pool == pool)
            ),
            key=lambda lot: (
                lot.pool != Pool.BONUS,
                lot.expires_at is None,
                lot.expires_at or self.start,
                lot.id,  # ids follow creation time here: one thread
            ),
        )
        moves = {}
        for lot in order:
            if amount == 0:
                break
            take = min(lot.remaining, amount)
            lot.remaining -= take
            moves[lot.id] = -take
            amount -= take
        assert amount == 0
        return moves

    def record(self, entry_id: int | None, kind: str, moves: dict[int, int], **kwargs):
        """Remember an entry and check that the database moved exactly the
        lots the model moved, by exactly as much: the spending order."""
        assert entry_id is not None
        assert movements_of(entry_id) == moves
        entry = LedgerEntry.objects.get(pk=entry_id)
        assert entry.kind == kind
        assert entry.amount_nanos == sum(moves.values())
        self.entries[entry_id] = ModelEntry(entry_id, kind, moves, **kwargs)

    def new_lot(self, entry: LedgerEntry, pool: str, expires_at) -> None:
        lot = CreditLot.objects.get(entry=entry)
        assert (lot.pool, lot.expires_at, lot.amount_nanos) == (
            pool,
            expires_at,
            entry.amount_nanos,
        )
        self.lots[lot.id] = ModelLot(lot.id, pool, expires_at, lot.amount_nanos)
        self.record(entry.pk, entry.kind, {lot.id: entry.amount_nanos})

    # --- credits ----------------------------------------------------------------

    @rule(
        source=st.sampled_from(GRANT_SOURCES),
        amount=amounts,
        to_topup=st.booleans(),
        days=st.one_of(st.none(), st.integers(min_value=1, max_value=5)),
    )
    def grant(self, source, amount, to_topup, days):
        pool = Pool.TOPUP if to_topup and source == LotSource.ADJUSTMENT else Pool.BONUS
        expires_at = timezone.now() + timedelta(days=days) if days else None
        entry = credit_grant(
            account=self.account,
            source=source,
            amount_nanos=amount,
            reason="property test",
            actor=None,
            idempotency_key=new_key("grant"),
            pool=pool,
            expires_at=expires_at,
        )
        self.new_lot(entry, pool, expires_at)

    @rule(amount=amounts, to_topup=st.booleans())
    def take_back(self, amount, to_topup):
        pool = Pool.TOPUP if to_topup else Pool.BONUS
        call = dict(
            account=self.account,
            source=LotSource.ADJUSTMENT,
            amount_nanos=-amount,
            reason="property test",
            actor=None,
            idempotency_key=new_key("adjust"),
            pool=pool,
        )
        if min(self.available, self.pool_total(pool)) < amount:
            with pytest.raises(InsufficientCredits):
                credit_grant(**call)
            return
        entry = credit_grant(**call)
        self.record(entry.pk, EntryKind.ADJUSTMENT, self.spend(amount, pool))

    @rule(amount=amounts)
    def top_up(self, amount):
        result = topup_credit(
            account=self.account,
            amount_nanos=amount,
            idempotency_key=new_key("pi"),
            reference="pi",
        )
        self.new_lot(result.topup_entry, Pool.TOPUP, None)
        bonus = percent_of(amount, settings.BONUS_RATE)
        if bonus == 0:
            assert result.bonus_entry is None
            return
        assert result.bonus_entry.amount_nanos == bonus
        expires_at = result.topup_entry.created_at + timedelta(
            days=settings.BONUS_EXPIRY_DAYS
        )
        self.new_lot(result.bonus_entry, Pool.BONUS, expires_at)

    # --- debits and holds ------------------------------------------------------------

    @rule(amount=amounts)
    def debit(self, amount):
        key = new_key("usage")
        if self.available < amount:
            with pytest.raises(InsufficientCredits) as refused:
                balance_debit(
                    account=self.account, amount_nanos=amount, idempotency_key=key
                )
            assert refused.value.available_nanos == self.available
            return
        debit = balance_debit(
            account=self.account, amount_nanos=amount, idempotency_key=key
        )
        assert debit.replayed is False
        self.record(debit.entry.pk, EntryKind.USAGE, self.spend(amount))
        self.debits.append((key, amount, debit.entry.pk))

    @rule(index=st.integers(min_value=0))
    def replay_debit(self, index):
        if not self.debits:
            return
        key, amount, entry_id = self.debits[index % len(self.debits)]
        debit = balance_debit(
            account=self.account, amount_nanos=amount, idempotency_key=key
        )
        assert (debit.entry.pk, debit.replayed) == (entry_id, True)

    @rule(amount=amounts, stale=st.booleans())
    def hold(self, amount, stale):
        ttl = timedelta(seconds=-1) if stale else None
        if self.available < amount:
            with pytest.raises(InsufficientCredits):
                hold_place(account=self.account, amount_nanos=amount, ttl=ttl)
            return
        hold = hold_place(account=self.account, amount_nanos=amount, ttl=ttl)
        self.active[hold.id] = amount
        if stale:
            self.stale.add(hold.id)

    @rule(
        index=st.integers(min_value=0), cost=st.integers(min_value=0, max_value=3_000)
    )
    def settle(self, index, cost):
        candidates = list(self.active) + self.closed
        if not candidates:
            return
        hold_id = candidates[index % len(candidates)]
        # What this request may take: its own hold and what no one holds.
        release = self.active.get(hold_id, 0)
        charge = max(0, min(cost, self.available + release))
        self.active.pop(hold_id, None)
        self.stale.discard(hold_id)
        if hold_id in self.closed:
            self.closed.remove(hold_id)
        settlement = hold_settle(hold_id=hold_id, cost_nanos=cost)
        assert (settlement.charged_nanos, settlement.shortfall_nanos) == (
            charge,
            cost - charge,
        )
        assert settlement.replayed is False
        if charge == 0:
            assert settlement.entry_id is None
        else:
            self.record(settlement.entry_id, EntryKind.USAGE, self.spend(charge))
        assert Hold.objects.get(pk=hold_id).state == HoldState.SETTLED

    @rule(index=st.integers(min_value=0))
    def release(self, index):
        if not self.active:
            return
        hold_id = list(self.active)[index % len(self.active)]
        assert hold_release(hold_id=hold_id) is True
        del self.active[hold_id]
        self.stale.discard(hold_id)
        self.closed.append(hold_id)
        assert hold_release(hold_id=hold_id) is False

    @rule(everything=st.booleans())
    def sweep(self, everything):
        # Other examples' accounts are swept too: count only ours.
        now = timezone.now() + timedelta(days=1) if everything else None
        holds_sweep_stale(now=now)
        swept = set(self.active) if everything else set(self.stale)
        for hold_id in swept:
            del self.active[hold_id]
            self.closed.append(hold_id)
        self.stale -= swept
        states = set(Hold.objects.filter(pk__in=swept).values_list("state", flat=True))
        assert states <= {HoldState.EXPIRED}

    # --- expiry and reversals --------------------------------------------------------

    @rule(horizon=st.sampled_from(EXPIRY_HORIZONS))
    def expire(self, horizon):
        now = timezone.now() + horizon
        due = [
            lot
            for lot in self.lots.values()
            if lot.expires_at is not None
            and lot.expires_at <= now
            and lot.remaining > 0
        ]
        before = {lot.id: lot.remaining for lot in due}
        expiring = sum(before.values())
        expected = min(expiring, self.available)
        lots_expire_due(now=now)
        after = dict(
            CreditLot.objects.filter(pk__in=before).values_list("id", "remaining_nanos")
        )
        # Which lots keep the held credits depends on the order the job visits
        # them; how much expires does not.
        assert sum(before.values()) - sum(after.values()) == expected
        if expected == expiring:
            assert set(after.values()) <= {0}
        for lot_id, left in after.items():
            assert 0 <= left <= before[lot_id]
            self.lots[lot_id].remaining = left
        for entry in LedgerEntry.objects.filter(
            account=self.account, kind=EntryKind.EXPIRY
        ).exclude(pk__in=self.entries):
            [(lot_id, delta)] = movements_of(entry).items()
            assert delta == after[lot_id] - before[lot_id]
            self.entries[entry.pk] = ModelEntry(
                entry.pk, EntryKind.EXPIRY, {lot_id: delta}
            )

    @rule(index=st.integers(min_value=0))
    def reverse(self, index):
        if not self.entries:
            return
        entry = list(self.entries.values())[index % len(self.entries)]
        call = dict(
            entry=LedgerEntry.objects.get(pk=entry.id),
            actor=None,
            reason="property test",
        )
        if entry.reversal_of is not None or entry.kind == EntryKind.EXPIRY:
            with pytest.raises(ReversalRefused):
                entry_reverse(**call)
            return
        if entry.reversed_by is not None:
            assert entry_reverse(**call).pk == entry.reversed_by
            return
        undo = {lot_id: -delta for lot_id, delta in entry.moves.items()}
        if any(self.lots[lot].remaining + delta < 0 for lot, delta in undo.items()):
            with pytest.raises(ReversalRefused):
                entry_reverse(**call)
            return
        taken = -sum(delta for delta in undo.values() if delta < 0)
        if taken > self.available:
            with pytest.raises(InsufficientCredits):
                entry_reverse(**call)
            return
        reversal = entry_reverse(**call)
        for lot_id, delta in undo.items():
            self.lots[lot_id].remaining += delta
        assert reversal.reverses_id == entry.id
        self.record(reversal.pk, entry.kind, undo, reversal_of=entry.id)
        entry.reversed_by = reversal.pk

    # --- after every step -----------------------------------------------------------

    @invariant()
    def ledger_is_whole(self):
        balance = balance_get(account=self.account)
        assert (balance.topup_nanos, balance.bonus_nanos, balance.held_nanos) == (
            self.pool_total(Pool.TOPUP),
            self.pool_total(Pool.BONUS),
            self.held,
        )
        lots = dict(
            CreditLot.objects.filter(account=self.account).values_list(
                "id", "remaining_nanos"
            )
        )
        assert lots == {lot.id: lot.remaining for lot in self.lots.values()}
        active = dict(
            Hold.objects.filter(
                account=self.account, state=HoldState.ACTIVE
            ).values_list("id", "amount_nanos")
        )
        assert active == self.active
        assert ledger_check(account_ids=[self.account.pk]) == []
        assert breakdown_get(account=self.account)["total"] == balance.total_nanos


@pytest.mark.django_db(transaction=True)
def test_ledger_state_machine():
    # transaction=True: every service call commits as it does in production,
    # and ledger_check() runs in a transaction of its own.
    run_state_machine_as_test(
        LedgerMachine,
        settings=hypothesis_settings(
            max_examples=25,
            stateful_step_count=40,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
