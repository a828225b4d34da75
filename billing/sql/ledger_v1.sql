-- The ledger's database side: what the database itself guarantees, and the
-- debit path, which runs as one statement so that the wallet row lock of a hot
-- account is held only for the statement and its commit.
--
-- This file is run again after every migrate that finds the database differs
-- from it (billing/sql_install.py): every statement must be safe to repeat.
--
-- Rule: every write to an account's lots, journal or holds happens under that
-- account's wallet row lock (SELECT ... FOR UPDATE), taken first. Lots are then
-- written without row locks of their own, and no two paths can deadlock.

-- Room on each page for updated rows, so the constant updates of wallets and
-- lots stay HOT (no index changes; see the indexes in models.py).
ALTER TABLE billing_wallet SET (fillfactor = 50);
ALTER TABLE billing_creditlot SET (fillfactor = 80);

-- The journal and the lots' movements are append-only: UPDATE, DELETE and
-- TRUNCATE are refused. Only a session that says so may TRUNCATE them (the
-- tests empty the database between tests that commit with TRUNCATE); nothing
-- in the product sets agipower.allow_truncate.
CREATE OR REPLACE FUNCTION billing_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE'
       AND current_setting('agipower.allow_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'AP009',
              HINT = 'correct a journal entry with a new entry that reverses it';
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
              WHERE proname IN ('billing_debit', 'billing_replay')
                AND pronamespace = current_schema()::regnamespace LOOP
        EXECUTE format('DROP FUNCTION %s', f);
    END LOOP;
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
    SELECT * INTO w FROM billing_wallet WHERE account_id = p_account FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % has no wallet', p_account USING ERRCODE = 'AP004';
    END IF;
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


-- Settle a hold at the request's actual cost: release what it held and charge
-- the cost in the spending order. A hold is settled once; settling it again
-- answers with the first result. A hold that was already released or swept
-- still charges the cost, from what is available, so that a response the
-- client received is billed. The charge never takes a balance below zero:
-- what could not be charged is returned as the shortfall.
CREATE OR REPLACE FUNCTION billing_hold_settle(
    p_hold uuid, p_cost bigint, p_description text, p_reference text
) RETURNS TABLE (entry_id bigint, charged_nanos bigint, shortfall_nanos bigint,
                 replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    h billing_hold;
    w billing_wallet;
    release bigint := 0;
    key text := 'hold:' || p_hold::text;
    charge bigint;
    from_topup bigint := 0;
    from_bonus bigint := 0;
BEGIN
    IF p_cost IS NULL OR p_cost < 0 THEN
        RAISE EXCEPTION 'a cost cannot be negative, got %', p_cost USING ERRCODE = 'AP003';
    END IF;
    SELECT * INTO h FROM billing_hold WHERE id = p_hold;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no hold %', p_hold USING ERRCODE = 'AP005';
    END IF;
    -- The wallet first, then the hold: the one lock order of every path.
    SELECT * INTO w FROM billing_wallet WHERE account_id = h.account_id FOR UPDATE;
    SELECT * INTO h FROM billing_hold WHERE id = p_hold;
    IF h.state = 'settled' THEN
        IF h.cost_nanos <> p_cost THEN
            RAISE EXCEPTION 'hold % was already settled at a cost of % nanos',
                p_hold, h.cost_nanos USING ERRCODE = 'AP002';
        END IF;
        entry_id := h.entry_id;
        charged_nanos := h.charged_nanos;
        shortfall_nanos := h.cost_nanos - h.charged_nanos;
        replayed := true;
        RETURN NEXT;
        RETURN;
    END IF;
    IF h.state = 'active' THEN
        release := h.amount_nanos;
        IF h.api_key_id IS NOT NULL THEN
            UPDATE apikeys_apikey SET held_nanos = held_nanos - release
             WHERE id = h.api_key_id;
        END IF;
    END IF;
    -- What this request may take: everything not held by other requests.
    charge := least(p_cost, w.topup_nanos + w.bonus_nanos - (w.held_nanos - release));
    charge := greatest(charge, 0);
    entry_id := NULL;
    IF charge > 0 THEN
        SELECT s.entry_id, s.from_topup, s.from_bonus
          INTO entry_id, from_topup, from_bonus
          FROM billing_spend(h.account_id, charge, NULL, w.topup_nanos, w.bonus_nanos,
                             'usage', key, p_description, p_reference, NULL) s;
    END IF;
    IF charge > 0 OR release > 0 THEN
        UPDATE billing_wallet
           SET topup_nanos = topup_nanos - from_topup,
               bonus_nanos = bonus_nanos - from_bonus,
               held_nanos = held_nanos - release,
               updated_at = clock_timestamp()
         WHERE account_id = h.account_id;
    END IF;
    UPDATE billing_hold
       SET state = 'settled', closed_at = clock_timestamp(), cost_nanos = p_cost,
           charged_nanos = charge,
           entry_id = billing_hold_settle.entry_id
     WHERE id = p_hold;
    charged_nanos := charge;
    shortfall_nanos := p_cost - charge;
    replayed := false;
    RETURN NEXT;
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
    PERFORM 1 FROM billing_wallet WHERE account_id = h.account_id FOR UPDATE;
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
    IF h.api_key_id IS NOT NULL THEN
        -- The hold also counted against its API key's credit limit.
        UPDATE apikeys_apikey SET held_nanos = held_nanos - h.amount_nanos
         WHERE id = h.api_key_id;
    END IF;
    RETURN true;
END $$;
