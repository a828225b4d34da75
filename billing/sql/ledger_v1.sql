-- The ledger's database side: what the database itself guarantees, and its
-- writes that run as one statement each, so that the wallet row lock of a hot
-- account is held only for the statement and its commit: debits
-- (billing_debit_many), holds (billing_hold_many), the settlement of a batch
-- of requests with the lease of credits of a worker (billing_batch) and the
-- release of a hold (billing_hold_release). The proxy's SQL calls these; this
-- file names no table of any app above billing, nor of billing's payments.
--
-- This file is run again after every migrate that finds the database differs
-- from it (billing/ledger/sql_install.py): every statement must be safe to
-- repeat.
--
-- Rule: every write to an account's lots, journal or holds happens under that
-- account's wallet row lock (SELECT ... FOR UPDATE, billing_wallet_lock), taken
-- first. Lots are then written without row locks of their own, and no two
-- paths can deadlock.

-- Room on each page for updated rows, so the constant updates of wallets, lots
-- and workers' lease rows stay HOT (no index changes; see the indexes in
-- models.py).
ALTER TABLE billing_wallet SET (fillfactor = 50);
ALTER TABLE billing_creditlot SET (fillfactor = 80);
ALTER TABLE billing_hold SET (fillfactor = 70);

-- The journal and the lots' movements are append-only: UPDATE, DELETE and
-- TRUNCATE are refused. Only a session that says so may TRUNCATE them (the
-- tests empty the database between tests that commit with TRUNCATE); nothing
-- in the product sets agipower.allow_truncate. Other append-only tables of the
-- floors above use the same function, their hint as the trigger's argument.
CREATE OR REPLACE FUNCTION billing_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE'
       AND current_setting('agipower.allow_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'AP009',
              HINT = coalesce(TG_ARGV[0],
                              'correct a journal entry with a new entry that reverses it');
END $$;

CREATE OR REPLACE TRIGGER billing_ledgerentry_append_only
    BEFORE UPDATE OR DELETE ON billing_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_change();

CREATE OR REPLACE TRIGGER billing_ledgerentry_no_truncate
    BEFORE TRUNCATE ON billing_ledgerentry
    FOR EACH STATEMENT EXECUTE FUNCTION billing_refuse_change();

CREATE OR REPLACE TRIGGER billing_lotmovement_append_only
    BEFORE UPDATE OR DELETE ON billing_lotmovement
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_change();

CREATE OR REPLACE TRIGGER billing_lotmovement_no_truncate
    BEFORE TRUNCATE ON billing_lotmovement
    FOR EACH STATEMENT EXECUTE FUNCTION billing_refuse_change();

-- Functions of earlier versions that the code no longer has.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT oid FROM pg_proc
              WHERE proname IN ('billing_debit', 'billing_replay',
                                'billing_hold_settle')
                AND pronamespace = current_schema()::regnamespace LOOP
        EXECUTE format('DROP FUNCTION %s', f);
    END LOOP;
END $$;


-- The account's wallet row, locked until the transaction ends: taken first by
-- every write to the account's lots, journal or holds, and by callers that
-- must read the account's state under the lock before they write.
CREATE OR REPLACE FUNCTION billing_wallet_lock(p_account bigint)
RETURNS billing_wallet
LANGUAGE plpgsql AS $$
DECLARE
    w billing_wallet;
BEGIN
    SELECT * INTO w FROM billing_wallet WHERE account_id = p_account FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % has no wallet', p_account USING ERRCODE = 'AP004';
    END IF;
    RETURN w;
END $$;


-- Take p_amount from the account's lots in the spending order (bonus pool
-- first, soonest expiry first, no expiry last, then oldest; then top-up lots,
-- oldest first), or from one pool only, appending each lot's movement to
-- lot_ids/deltas. The caller holds the wallet lock and has checked that the
-- lots cover p_amount; it writes the journal entry and the wallet.
CREATE OR REPLACE FUNCTION billing_take(
    p_account bigint, p_amount bigint, p_pool text,
    INOUT lot_ids bigint[], INOUT deltas bigint[],
    OUT from_topup bigint, OUT from_bonus bigint
)
LANGUAGE plpgsql AS $$
DECLARE
    lot record;
    left_to_take bigint := p_amount;
    take bigint;
BEGIN
    from_topup := 0;
    from_bonus := 0;
    FOR lot IN
        SELECT id, pool, remaining_nanos FROM billing_creditlot
         WHERE account_id = p_account AND remaining_nanos > 0
           AND (p_pool IS NULL OR pool = p_pool)
         ORDER BY pool, expires_at NULLS LAST, created_at, id
    LOOP
        take := least(lot.remaining_nanos, left_to_take);
        UPDATE billing_creditlot SET remaining_nanos = remaining_nanos - take
         WHERE id = lot.id;
        IF lot.pool = 'bonus' THEN
            from_bonus := from_bonus + take;
        ELSE
            from_topup := from_topup + take;
        END IF;
        lot_ids := lot_ids || lot.id;
        deltas := deltas || -take;
        left_to_take := left_to_take - take;
        EXIT WHEN left_to_take = 0;
    END LOOP;
    IF left_to_take <> 0 THEN
        -- The wallet said the credits were there but the lots disagree: drift.
        RAISE EXCEPTION 'lots of account % do not cover % nanos (short by %)',
            p_account, p_amount, left_to_take USING ERRCODE = 'AP008';
    END IF;
END $$;


-- Write a debit's journal entry and its lot movements (one per lot, summed).
CREATE OR REPLACE FUNCTION billing_entry_write(
    p_account bigint, p_kind text, p_from_topup bigint, p_from_bonus bigint,
    p_topup_after bigint, p_bonus_after bigint, p_key text, p_description text,
    p_reference text, p_actor bigint, p_lot_ids bigint[], p_deltas bigint[]
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    new_entry bigint;
BEGIN
    INSERT INTO billing_ledgerentry (
        account_id, kind, amount_nanos, topup_delta_nanos, bonus_delta_nanos,
        topup_balance_nanos, bonus_balance_nanos, created_at, description,
        reference, method, actor_id, reverses_id, idempotency_key)
    VALUES (
        p_account, p_kind, -(p_from_topup + p_from_bonus), -p_from_topup, -p_from_bonus,
        p_topup_after, p_bonus_after, clock_timestamp(),
        p_description, p_reference, '', p_actor, NULL, p_key)
    RETURNING id INTO new_entry;

    INSERT INTO billing_lotmovement (entry_id, lot_id, delta_nanos)
    SELECT new_entry, l, sum(d) FROM unnest(p_lot_ids, p_deltas) AS m(l, d)
     GROUP BY l;
    RETURN new_entry;
END $$;


-- Take p_amount (see billing_take) and write its journal entry; the caller
-- passes the balances before and updates the wallet row itself (once per
-- batch). Returns the entry id and the split by pool.
CREATE OR REPLACE FUNCTION billing_spend(
    p_account bigint, p_amount bigint, p_pool text,
    p_topup_before bigint, p_bonus_before bigint,
    p_kind text, p_key text, p_description text, p_reference text, p_actor bigint,
    OUT entry_id bigint, OUT from_topup bigint, OUT from_bonus bigint
)
LANGUAGE plpgsql AS $$
DECLARE
    taken record;
BEGIN
    SELECT * INTO taken FROM billing_take(p_account, p_amount, p_pool, '{}', '{}');
    from_topup := taken.from_topup;
    from_bonus := taken.from_bonus;
    entry_id := billing_entry_write(
        p_account, p_kind, from_topup, from_bonus,
        p_topup_before - from_topup, p_bonus_before - from_bonus,
        p_key, p_description, p_reference, p_actor, taken.lot_ids, taken.deltas);
END $$;


-- Debit many amounts from one account under one lock and one commit (group
-- commit: a hot account's debits queue for its lock, so each commit should
-- carry as many as are waiting). Each debit gets its own journal entry and is
-- refused on its own, writing nothing, when what is available (total - held,
-- or the pool's balance) does not cover it: no balance goes below zero. The
-- answer has one row per debit, in order: the entry, or why it was refused.
CREATE OR REPLACE FUNCTION billing_debit_many(
    p_account bigint, p_kind text, p_amounts bigint[], p_keys text[],
    p_descriptions text[], p_references text[], p_actor bigint, p_pool text
) RETURNS TABLE (entry_id bigint, replayed boolean, error text, available bigint)
LANGUAGE plpgsql AS $$
DECLARE
    w billing_wallet;
    topup bigint;
    bonus bigint;
    amount bigint;
    previous record;
    spent record;
BEGIN
    w := billing_wallet_lock(p_account);
    topup := w.topup_nanos;
    bonus := w.bonus_nanos;
    FOR i IN 1 .. coalesce(array_length(p_amounts, 1), 0) LOOP
        amount := p_amounts[i];
        entry_id := NULL;
        replayed := false;
        error := NULL;
        available := topup + bonus - w.held_nanos;
        IF p_pool = 'topup' THEN
            available := least(available, topup);
        ELSIF p_pool = 'bonus' THEN
            available := least(available, bonus);
        END IF;
        -- A replayed key answers with the first result; the same key for a
        -- different debit is an error, never a silent success.
        SELECT e.id, e.kind, e.amount_nanos INTO previous FROM billing_ledgerentry e
         WHERE e.account_id = p_account AND e.idempotency_key = p_keys[i];
        IF FOUND THEN
            IF previous.kind = p_kind AND previous.amount_nanos = -amount THEN
                entry_id := previous.id;
                replayed := true;
            ELSE
                error := format('idempotency key %s was already used for a %s of %s nanos',
                                p_keys[i], previous.kind, previous.amount_nanos);
            END IF;
        ELSIF amount IS NULL OR amount <= 0 THEN
            error := format('a debit must be a positive amount, got %s', amount);
        ELSIF available < amount THEN
            error := 'insufficient_credits';
        ELSE
            SELECT * INTO spent FROM billing_spend(
                p_account, amount, p_pool, topup, bonus, p_kind, p_keys[i],
                p_descriptions[i], p_references[i], p_actor);
            entry_id := spent.entry_id;
            topup := topup - spent.from_topup;
            bonus := bonus - spent.from_bonus;
        END IF;
        RETURN NEXT;
    END LOOP;
    IF topup <> w.topup_nanos OR bonus <> w.bonus_nanos THEN
        UPDATE billing_wallet SET topup_nanos = topup, bonus_nanos = bonus,
                                  updated_at = clock_timestamp()
         WHERE account_id = p_account;
    END IF;
END $$;


-- Set credits aside for requests of one account, in order, under one lock and
-- one commit (a hot account's transactions queue for its wallet row, so each
-- should carry all that is waiting). A hold is refused on its own, writing
-- nothing, when what is available (total - held) is short of it
-- ('insufficient_credits', with what is available).
--
-- A hold may also count against a limit of the caller's: p_owners[i] names it
-- in the caller's own terms (billing stores it on the hold and never
-- interprets it; '' for none) and p_rooms[i] is what that owner may still set
-- aside (NULL: no limit). The holds of one owner in the batch share its room;
-- one that does not fit is refused ('limit_reached', with what is left of the
-- room). Answers one row per hold.
CREATE OR REPLACE FUNCTION billing_hold_many(
    p_account bigint, p_holds uuid[], p_amounts bigint[], p_expires timestamptz[],
    p_references text[], p_owners text[], p_rooms bigint[]
) RETURNS TABLE (refusal text, available bigint)
LANGUAGE plpgsql AS $$
DECLARE
    w billing_wallet;
    held bigint;
    amount bigint;
    hold_owner text;
    limited text[] := '{}';  -- the owners with a room, in the order seen
    placed bigint[] := '{}';  -- and what this batch set aside for each
    slot int;
    room bigint;
BEGIN
    w := billing_wallet_lock(p_account);
    held := w.held_nanos;
    FOR i IN 1 .. coalesce(cardinality(p_holds), 0) LOOP
        amount := p_amounts[i];
        IF amount IS NULL OR amount <= 0 THEN
            RAISE EXCEPTION 'a hold must be a positive amount, got %', amount
                USING ERRCODE = 'AP003';
        END IF;
        hold_owner := coalesce(p_owners[i], '');
        refusal := NULL;
        slot := NULL;
        available := w.topup_nanos + w.bonus_nanos - held;
        IF available < amount THEN
            refusal := 'insufficient_credits';
        ELSIF p_rooms[i] IS NOT NULL THEN
            slot := array_position(limited, hold_owner);
            IF slot IS NULL THEN
                limited := limited || hold_owner;
                placed := placed || 0::bigint;
                slot := cardinality(limited);
            END IF;
            room := p_rooms[i] - placed[slot];
            IF room < amount THEN
                refusal := 'limit_reached';
                available := greatest(room, 0);
            END IF;
        END IF;
        IF refusal IS NULL THEN
            INSERT INTO billing_hold (id, account_id, amount_nanos, state, reference,
                                      owner, created_at, expires_at, cost_nanos,
                                      charged_nanos)
            VALUES (p_holds[i], p_account, amount, 'active',
                    left(coalesce(p_references[i], ''), 200), hold_owner,
                    clock_timestamp(), p_expires[i], 0, 0);
            held := held + amount;
            available := available - amount;
            IF slot IS NOT NULL THEN
                placed[slot] := placed[slot] + amount;
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
    IF held <> w.held_nanos THEN
        UPDATE billing_wallet SET held_nanos = held, updated_at = clock_timestamp()
         WHERE account_id = p_account;
    END IF;
END $$;


-- One batch of an account's settlements and of a worker's lease of its
-- credits, under one lock and one commit (group commit, as for holds).
--
-- The lease: credits a worker holds for the account (a hold row of its own,
-- p_lease, with an expiry that each batch renews), from which it admits
-- requests without a database write.
--
-- First each item is settled at its cost (p_costs[i]): its own hold
-- (p_holds[i]) is released, or with p_on_lease[i] the part of the cost up to
-- what remains of the lease is taken out of the lease, and the cost is
-- charged in the spending order, never more than is available (a shortfall
-- shows as charged < cost). A hold that was released or swept meanwhile still
-- charges its cost from what is available: the answer reached the client. A
-- hold is settled once: settled already, its item charges nothing and answers
-- 'replayed' (or 'conflict' when its recorded cost differs).
-- Then p_return nanos of the lease are given back, then it grows by at least
-- p_grow_need and at most p_grow_want, never by more than a quarter of what is
-- available beyond the need; if what is available is short of the need, by
-- just p_grow_min (the smallest request waiting) if that fits, else not at
-- all. A lease left empty is released.
--
-- The batch's charges become one `usage` journal entry (idempotency key p_key).
-- Answers, per item in order: its outcome ('settled': its own hold; 'charged':
-- no hold of its own; 'replayed'; 'conflict'), what it was charged, and from
-- which pool (the spending order takes every bonus credit before any top-up
-- credit, so the first from_bonus nanos of the batch's charges, in order, came
-- from the bonus pool); and the entry, the lease (its id, or NULL when nothing
-- is leased), its amount, what it grew by, and the balances after.
CREATE OR REPLACE FUNCTION billing_batch(
    p_account bigint, p_lease uuid,
    p_holds uuid[], p_costs bigint[], p_on_lease boolean[],
    p_return bigint, p_grow_need bigint, p_grow_min bigint, p_grow_want bigint,
    p_lease_expires timestamptz, p_key text, p_description text, p_reference text,
    OUT outcomes text[], OUT charged bigint[], OUT from_topup bigint[],
    OUT from_bonus bigint[], OUT entry_id bigint, OUT lease_id uuid,
    OUT lease_amount bigint, OUT granted bigint, OUT available bigint,
    OUT topup bigint, OUT bonus bigint
)
LANGUAGE plpgsql AS $$
DECLARE
    w billing_wallet;
    held bigint;
    h billing_hold;
    lease billing_hold;
    lease_left bigint := 0;
    release bigint;
    charge bigint;
    cost bigint;
    taken record;
    took_bonus bigint;
    total_charge bigint := 0;
    total_topup bigint := 0;
    total_bonus bigint := 0;
    charged_before bigint := 0;
    -- The holds settled now, with their costs and charges.
    settled uuid[] := '{}';
    settled_costs bigint[] := '{}';
    settled_charges bigint[] := '{}';
    seen int;
BEGIN
    w := billing_wallet_lock(p_account);
    topup := w.topup_nanos;
    bonus := w.bonus_nanos;
    held := w.held_nanos;
    outcomes := '{}';
    charged := '{}';
    from_topup := '{}';
    from_bonus := '{}';
    granted := 0;
    IF p_lease IS NOT NULL THEN
        SELECT * INTO lease FROM billing_hold
         WHERE id = p_lease AND account_id = p_account AND state = 'active';
        IF FOUND THEN
            lease_id := lease.id;
            lease_left := lease.amount_nanos;
        END IF;
    END IF;

    -- What each item is charged. The charges are then taken from the lots at
    -- once, and split by pool per item.
    FOR i IN 1 .. coalesce(cardinality(p_costs), 0) LOOP
        cost := p_costs[i];
        IF cost IS NULL OR cost < 0 THEN
            RAISE EXCEPTION 'a cost cannot be negative, got %', cost
                USING ERRCODE = 'AP003';
        END IF;
        release := 0;
        charge := 0;
        h := NULL;
        IF p_holds[i] IS NOT NULL THEN
            SELECT * INTO h FROM billing_hold
             WHERE id = p_holds[i] AND account_id = p_account;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'no hold % of account %', p_holds[i], p_account
                    USING ERRCODE = 'AP005';
            END IF;
            seen := array_position(settled, h.id);
            IF seen IS NOT NULL THEN  -- twice in this batch
                h.state := 'settled';
                h.cost_nanos := settled_costs[seen];
            END IF;
        END IF;
        IF h.state = 'settled' THEN
            outcomes := outcomes
                || CASE WHEN h.cost_nanos = cost THEN 'replayed' ELSE 'conflict' END;
        ELSE
            IF h.state = 'active' THEN
                release := h.amount_nanos;
            ELSIF coalesce(p_on_lease[i], false) THEN
                release := least(cost, lease_left);
                lease_left := lease_left - release;
            END IF;
            -- What this item may take: everything not held by others.
            charge := greatest(
                least(cost, topup + bonus - total_charge - (held - release)), 0);
            total_charge := total_charge + charge;
            held := held - release;
            IF h.id IS NULL THEN
                outcomes := outcomes || 'charged'::text;
            ELSE
                outcomes := outcomes || 'settled'::text;
                settled := settled || h.id;
                settled_costs := settled_costs || cost;
                settled_charges := settled_charges || charge;
            END IF;
        END IF;
        charged := charged || charge;
    END LOOP;
    IF total_charge > 0 THEN
        SELECT * INTO taken FROM billing_take(p_account, total_charge, NULL, '{}', '{}');
        total_topup := taken.from_topup;
        total_bonus := taken.from_bonus;
        topup := topup - total_topup;
        bonus := bonus - total_bonus;
    END IF;
    FOR i IN 1 .. cardinality(charged) LOOP
        took_bonus := greatest(least(charged_before + charged[i], total_bonus)
                               - charged_before, 0);
        from_bonus := from_bonus || took_bonus;
        from_topup := from_topup || (charged[i] - took_bonus);
        charged_before := charged_before + charged[i];
    END LOOP;

    -- The lease: give back, then grow.
    IF p_return > 0 THEN
        release := least(p_return, lease_left);
        lease_left := lease_left - release;
        held := held - release;
    END IF;
    available := topup + bonus - held;
    IF p_grow_need > 0 AND available >= p_grow_need THEN
        granted := least(available,
                         greatest(p_grow_need,
                                  least(p_grow_want, p_grow_need + available / 4)));
    ELSIF p_grow_need > 0 AND p_grow_min > 0 AND available >= p_grow_min THEN
        granted := p_grow_min;
    END IF;
    IF granted > 0 THEN
        lease_left := lease_left + granted;
        held := held + granted;
        available := available - granted;
    END IF;
    IF lease_id IS NOT NULL THEN
        IF lease_left > 0 THEN
            -- The expiry is renewed only when less than half of its time is
            -- left: otherwise it stays as it is, so that the update touches no
            -- index (a HOT update) on this row that every batch changes.
            UPDATE billing_hold
               SET amount_nanos = lease_left,
                   expires_at = CASE
                       WHEN expires_at - clock_timestamp()
                            < (p_lease_expires - clock_timestamp()) / 2
                       THEN p_lease_expires ELSE expires_at END
             WHERE id = lease_id;
        ELSE
            UPDATE billing_hold SET state = 'released', closed_at = clock_timestamp()
             WHERE id = lease_id;
            lease_id := NULL;
        END IF;
    ELSIF lease_left > 0 THEN
        lease_id := gen_random_uuid();
        INSERT INTO billing_hold (id, account_id, amount_nanos, state, reference,
                                  owner, created_at, expires_at, cost_nanos,
                                  charged_nanos)
        VALUES (lease_id, p_account, lease_left, 'active', 'lease', '',
                clock_timestamp(), p_lease_expires, 0, 0);
    END IF;
    lease_amount := lease_left;

    IF total_charge > 0 THEN
        entry_id := billing_entry_write(
            p_account, 'usage', total_topup, total_bonus, topup, bonus,
            p_key, p_description, p_reference, NULL, taken.lot_ids, taken.deltas);
    END IF;
    IF topup <> w.topup_nanos OR bonus <> w.bonus_nanos OR held <> w.held_nanos THEN
        UPDATE billing_wallet
           SET topup_nanos = topup, bonus_nanos = bonus, held_nanos = held,
               updated_at = clock_timestamp()
         WHERE account_id = p_account;
    END IF;
    IF cardinality(settled) > 0 THEN
        UPDATE billing_hold b
           SET state = 'settled', closed_at = clock_timestamp(),
               cost_nanos = s.hold_cost, charged_nanos = s.hold_charge,
               entry_id = CASE WHEN s.hold_charge > 0 THEN billing_batch.entry_id END
          FROM unnest(settled, settled_costs, settled_charges)
               AS s(hold_id, hold_cost, hold_charge)
         WHERE b.id = s.hold_id;
    END IF;
END $$;


-- Release an active hold without charging (p_state 'released'), or as the sweep
-- of a hold whose worker died ('expired'). Returns false if it was not active.
DROP FUNCTION IF EXISTS billing_hold_release(uuid, text);
CREATE OR REPLACE FUNCTION billing_hold_release(
    p_hold uuid, p_state text, p_now timestamptz DEFAULT NULL
) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    h billing_hold;
BEGIN
    SELECT * INTO h FROM billing_hold WHERE id = p_hold;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no hold %', p_hold USING ERRCODE = 'AP005';
    END IF;
    PERFORM billing_wallet_lock(h.account_id);
    -- The sweep ('expired') releases only a hold still past its expiry: a
    -- worker may have renewed it since the sweep listed it.
    UPDATE billing_hold SET state = p_state, closed_at = clock_timestamp()
     WHERE id = p_hold AND state = 'active'
       AND (p_state <> 'expired' OR expires_at <= coalesce(p_now, clock_timestamp()))
    RETURNING * INTO h;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE billing_wallet SET held_nanos = held_nanos - h.amount_nanos, updated_at = clock_timestamp()
     WHERE account_id = h.account_id;
    RETURN true;
END $$;
