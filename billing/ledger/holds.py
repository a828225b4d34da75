"""Holds and their settlement: credits set aside for requests in flight, and
the charge of each request at its actual cost when it is done.

These writes exist once, in SQL (``billing/sql/ledger_v1.sql``):
``billing_hold_many`` places holds, ``billing_batch`` settles a batch of
requests of one account and grows or gives back a worker's lease of its
credits, ``billing_hold_release`` releases a hold (the sweep of holds whose
worker died). The proxy runs them from its own SQL, which adds what is its
own (request logs, keys' usage and credit limits). The functions here run the
same SQL for billing's own callers: the sweep, the ledger's tests and its
bench.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from accounts.models import Account
from billing.errors import HoldNotFound, IdempotencyConflict, InsufficientCredits
from billing.ledger.debits import insufficient
from billing.ledger.functions import sql_call, sql_call_one
from billing.ledger.models import Hold, HoldState
from billing.ledger.validation import amount_check

logger = logging.getLogger(__name__)


# --- placing holds ----------------------------------------------------------------


@dataclass(frozen=True)
class HoldRequest:
    amount_nanos: int
    reference: str = ""
    ttl: timedelta | None = None  # None: settings.HOLD_TTL


def holds_place(
    *, account: Account, holds: list[HoldRequest]
) -> list[Hold | InsufficientCredits]:
    """Set credits aside for requests in flight, in order, under one lock and
    one commit. Each hold is refused on its own (the error in its place,
    nothing of it written) when what is available is short of it."""
    for request in holds:
        amount_check(request.amount_nanos, allow_negative=False)
    now = timezone.now()
    ids = [uuid.uuid4() for _ in holds]
    expiries = [now + (settings.HOLD_TTL if h.ttl is None else h.ttl) for h in holds]
    references = [h.reference[:200] for h in holds]
    rows = sql_call(
        "SELECT refusal, available FROM billing_hold_many(%s, %s::uuid[],"
        " %s::bigint[], %s::timestamptz[], %s::text[], %s::text[], %s::bigint[])",
        [
            account.pk,
            ids,
            [h.amount_nanos for h in holds],
            expiries,
            references,
            [""] * len(holds),  # no owner, no limit but the balance
            [None] * len(holds),
        ],
    )
    outcomes: list[Hold | InsufficientCredits] = []
    for request, hold_id, expires_at, reference, (refusal, available) in zip(
        holds, ids, expiries, references, rows, strict=True
    ):
        if refusal is not None:
            outcomes.append(insufficient(available, request.amount_nanos))
            continue
        outcomes.append(
            Hold(
                id=hold_id,
                account=account,
                amount_nanos=request.amount_nanos,
                state=HoldState.ACTIVE,
                reference=reference,
                created_at=now,
                expires_at=expires_at,
            )
        )
    return outcomes


def hold_place(
    *,
    account: Account,
    amount_nanos: int,
    reference: str = "",
    ttl: timedelta | None = None,
) -> Hold:
    """One hold (see ``holds_place``); raises InsufficientCredits."""
    (outcome,) = holds_place(
        account=account, holds=[HoldRequest(amount_nanos, reference, ttl)]
    )
    if isinstance(outcome, InsufficientCredits):
        raise outcome
    return outcome


# --- settling ---------------------------------------------------------------------


@dataclass(frozen=True)
class BatchItem:
    cost_nanos: int
    hold_id: uuid.UUID | None = None  # the request's own hold
    on_lease: bool = False  # admitted against the worker's lease


@dataclass(frozen=True)
class ItemSettlement:
    # "settled" (its own hold), "charged" (no hold of its own), "replayed" (its
    # hold was settled before, at this cost) or "conflict" (at another cost).
    outcome: str
    charged_nanos: int
    topup_nanos: int
    bonus_nanos: int


@dataclass(frozen=True)
class BatchSettlement:
    items: list[ItemSettlement]
    entry_id: int | None  # the batch's usage entry, if it charged anything
    lease_id: uuid.UUID | None
    lease_nanos: int
    granted_nanos: int
    available_nanos: int


def batch_settle(
    *,
    account: Account,
    items: list[BatchItem],
    idempotency_key: str,
    description: str = "",
    reference: str = "",
    lease_id: uuid.UUID | None = None,
    lease_return_nanos: int = 0,
    lease_need_nanos: int = 0,
    lease_min_nanos: int = 0,
    lease_want_nanos: int = 0,
    lease_ttl: timedelta | None = None,
) -> BatchSettlement:
    """Settle a batch of an account's requests at their costs and give back or
    grow a worker's lease, under one lock and one commit (``billing_batch``:
    what each may be charged, the spending order, the lease's rules). The
    batch's charges become one usage entry under ``idempotency_key``."""
    for item in items:
        amount_check(item.cost_nanos, allow_negative=False, allow_zero=True)
    ttl = settings.HOLD_TTL if lease_ttl is None else lease_ttl
    row = sql_call_one(
        "SELECT outcomes, charged, from_topup, from_bonus, entry_id, lease_id,"
        " lease_amount, granted, available FROM billing_batch(%s, %s,"
        " %s::uuid[], %s::bigint[], %s::boolean[], %s, %s, %s, %s, %s, %s, %s, %s)",
        [
            account.pk,
            lease_id,
            [item.hold_id for item in items],
            [item.cost_nanos for item in items],
            [item.on_lease for item in items],
            lease_return_nanos,
            lease_need_nanos,
            lease_min_nanos,
            lease_want_nanos,
            timezone.now() + ttl,
            idempotency_key,
            description[:500],
            reference[:200],
        ],
    )
    outcomes, charged, topups, bonuses, entry_id, lease, amount, granted, left = row
    return BatchSettlement(
        items=[
            ItemSettlement(*settled)
            for settled in zip(outcomes, charged, topups, bonuses, strict=True)
        ],
        entry_id=entry_id,
        lease_id=lease,
        lease_nanos=amount,
        granted_nanos=granted,
        available_nanos=left,
    )


@dataclass(frozen=True)
class Settlement:
    entry_id: int | None
    charged_nanos: int
    shortfall_nanos: int
    replayed: bool


def hold_settle(
    *, hold_id: uuid.UUID, cost_nanos: int, description: str = "", reference: str = ""
) -> Settlement:
    """Settle one hold (a batch of one): release it and charge the request's
    actual cost (bonus first), never more than is available. A cost of 0 only
    releases. Settling twice answers with the first result."""
    amount_check(cost_nanos, allow_negative=False, allow_zero=True)
    hold = Hold.objects.select_related("account").filter(pk=hold_id).first()
    if hold is None:
        raise HoldNotFound(f"no hold {hold_id}")
    batch = batch_settle(
        account=hold.account,
        items=[BatchItem(cost_nanos, hold_id=hold.id)],
        idempotency_key=f"hold:{hold.id}",
        description=description,
        reference=reference,
    )
    (item,) = batch.items
    if item.outcome in ("replayed", "conflict"):
        hold.refresh_from_db()
        if item.outcome == "conflict":
            raise IdempotencyConflict(
                f"hold {hold.id} was already settled at a cost of "
                f"{hold.cost_nanos} nanos"
            )
        return Settlement(
            hold.entry_id,
            hold.charged_nanos,
            hold.cost_nanos - hold.charged_nanos,
            True,
        )
    shortfall = cost_nanos - item.charged_nanos
    if shortfall:
        logger.warning(
            "hold %s settled short: cost %d nanos, charged %d",
            hold.id,
            cost_nanos,
            item.charged_nanos,
        )
    return Settlement(batch.entry_id, item.charged_nanos, shortfall, False)


# --- releasing --------------------------------------------------------------------


def hold_release(*, hold_id: uuid.UUID) -> bool:
    """Release a hold without charging; False if it was no longer active."""
    (released,) = sql_call_one(
        "SELECT billing_hold_release(%s, %s)", [hold_id, HoldState.RELEASED]
    )
    return released


def holds_sweep_stale(*, now: datetime | None = None) -> int:
    """Release the holds whose request never settled (a crashed worker). What
    a key's credit limit counts is the active holds placed for it, so nothing
    else needs mending."""
    now = now or timezone.now()
    stale = Hold.objects.filter(
        state=HoldState.ACTIVE, expires_at__lte=now
    ).values_list("id", flat=True)
    released = 0
    for hold_id in stale.iterator():
        (done,) = sql_call_one(
            "SELECT billing_hold_release(%s, %s, %s)",
            [hold_id, HoldState.EXPIRED, now],
        )
        if done:
            released += 1
            logger.warning("released stale hold %s", hold_id)
    return released
