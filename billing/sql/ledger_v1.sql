-- The ledger's database side: what the database itself guarantees, and the
-- debit path, which runs as one statement so that the wallet row lock of a hot
-- account is held only for the statement and its commit.
--
-- Rule: every write to an account's lots, journal or holds happens under that
-- account's wallet row lock (SELECT ... FOR UPDATE), taken first. Lots are then
-- written without row locks of their own, and no two paths can deadlock.

CREATE OR REPLACE FUNCTION billing_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'AP009',
              HINT = 'correct a journal entry with a new entry that reverses it';
END $$;

DROP TRIGGER IF EXISTS billing_ledgerentry_append_only ON billing_ledgerentry;
CREATE TRIGGER billing_ledgerentry_append_only
    BEFORE UPDATE OR DELETE ON billing_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_change();

DROP TRIGGER IF EXISTS billing_lotmovement_append_only ON billing_lotmovement;
CREATE TRIGGER billing_lotmovement_append_only
    BEFORE UPDATE OR DELETE ON billing_lotmovement
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_change();


-- Spend p_amount from the account's lots in the spending order (bonus pool
-- first, soonest expiry first, no expiry last, then oldest; then top-up lots,
-- oldest first), or from one pool only. The caller holds the wallet lock and
-- has checked that the lots cover p_amount. Writes the journal entry, its lot
-- movements and the wallet's new balances; returns the entry id.
CREATE OR REPLACE FUNCTION billing_spend(
    p_wallet billing_wallet, p_amount bigint, p_held_release bigint,
    p_kind text, p_key text, p_description text, p_reference text,
    p_actor bigint, p_pool text
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    lot record;
    left_to_take bigint := p_amount;
    take bigint;
    from_topup bigint := 0;
    from_bonus bigint := 0;
    lot_ids bigint[] := '{}';
    deltas bigint[] := '{}';
    new_entry bigint;
BEGIN
    FOR lot IN
        SELECT id, pool, remaining_nanos FROM billing_creditlot
         WHERE account_id = p_wallet.account_id AND remaining_nanos > 0
           AND (p_pool IS NULL OR pool = p_pool)
         ORDER BY pool, expires_at NULLS LAST, created_at, id
    LOOP
        EXIT WHEN left_to_take = 0;
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
    END LOOP;
    IF left_to_take <> 0 THEN
        -- The wallet said the credits were there but the lots disagree: drift.
        RAISE EXCEPTION 'lots of account % do not cover % nanos (short by %)',
            p_wallet.account_id, p_amount, left_to_take USING ERRCODE = 'AP008';
    END IF;

    UPDATE billing_wallet
       SET topup_nanos = topup_nanos - from_topup,
           bonus_nanos = bonus_nanos - from_bonus,
           held_nanos = held_nanos - p_held_release,
           updated_at = now()
     WHERE account_id = p_wallet.account_id;

    INSERT INTO billing_ledgerentry (
        account_id, kind, amount_nanos, topup_delta_nanos, bonus_delta_nanos,
        topup_balance_nanos, bonus_balance_nanos, created_at, description,
        reference, method, actor_id, reverses_id, idempotency_key)
    VALUES (
        p_wallet.account_id, p_kind, -p_amount, -from_topup, -from_bonus,
        p_wallet.topup_nanos - from_topup, p_wallet.bonus_nanos - from_bonus, now(),
        p_description, p_reference, '', p_actor, NULL, p_key)
    RETURNING id INTO new_entry;

    INSERT INTO billing_lotmovement (entry_id, lot_id, delta_nanos)
    SELECT new_entry, l, d FROM unnest(lot_ids, deltas) AS m(l, d);
    RETURN new_entry;
END $$;


-- A replayed idempotency key answers with the first result; the same key with a
-- different kind or amount is an error, never a silent success.
CREATE OR REPLACE FUNCTION billing_replay(
    p_account bigint, p_key text, p_kind text, p_amount bigint
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    previous billing_ledgerentry;
BEGIN
    SELECT * INTO previous FROM billing_ledgerentry
     WHERE account_id = p_account AND idempotency_key = p_key;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF previous.kind <> p_kind OR previous.amount_nanos <> -p_amount THEN
        RAISE EXCEPTION 'idempotency key % was already used for a % of % nanos',
            p_key, previous.kind, previous.amount_nanos USING ERRCODE = 'AP002';
    END IF;
    RETURN previous.id;
END $$;


-- Debit p_amount (> 0) from what is available (total - held). Refuses, writing
-- nothing, when the balance does not cover it: no balance goes below zero.
CREATE OR REPLACE FUNCTION billing_debit(
    p_account bigint, p_amount bigint, p_kind text, p_key text,
    p_description text, p_reference text, p_actor bigint, p_pool text
) RETURNS TABLE (entry_id bigint, replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    w billing_wallet;
    available bigint;
BEGIN
    IF p_amount IS NULL OR p_amount <= 0 THEN
        RAISE EXCEPTION 'a debit must be a positive amount, got %', p_amount
            USING ERRCODE = 'AP003';
    END IF;
    SELECT * INTO w FROM billing_wallet WHERE account_id = p_account FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % has no wallet', p_account USING ERRCODE = 'AP004';
    END IF;
    entry_id := billing_replay(p_account, p_key, p_kind, p_amount);
    IF entry_id IS NOT NULL THEN
        replayed := true;
        RETURN NEXT;
        RETURN;
    END IF;
    available := w.topup_nanos + w.bonus_nanos - w.held_nanos;
    IF p_pool = 'topup' THEN
        available := least(available, w.topup_nanos);
    ELSIF p_pool = 'bonus' THEN
        available := least(available, w.bonus_nanos);
    END IF;
    IF available < p_amount THEN
        RAISE EXCEPTION 'insufficient credits: % nanos available, % needed',
            available, p_amount
            USING ERRCODE = 'AP001', DETAIL = available::text;
    END IF;
    entry_id := billing_spend(w, p_amount, 0, p_kind, p_key, p_description,
                              p_reference, p_actor, p_pool);
    replayed := false;
    RETURN NEXT;
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
        IF h.charged_nanos <> p_cost AND h.entry_id IS NOT NULL THEN
            RAISE EXCEPTION 'hold % was already settled at % nanos', p_hold, h.charged_nanos
                USING ERRCODE = 'AP002';
        END IF;
        entry_id := h.entry_id;
        charged_nanos := h.charged_nanos;
        shortfall_nanos := 0;
        replayed := true;
        RETURN NEXT;
        RETURN;
    END IF;
    IF h.state = 'active' THEN
        release := h.amount_nanos;
    END IF;
    -- What this request may take: everything not held by other requests.
    charge := least(p_cost, w.topup_nanos + w.bonus_nanos - (w.held_nanos - release));
    charge := greatest(charge, 0);
    IF charge > 0 THEN
        entry_id := billing_spend(w, charge, release, 'usage', key, p_description,
                                  p_reference, NULL, NULL);
    ELSE
        entry_id := NULL;
        IF release > 0 THEN
            UPDATE billing_wallet SET held_nanos = held_nanos - release, updated_at = now()
             WHERE account_id = h.account_id;
        END IF;
    END IF;
    UPDATE billing_hold
       SET state = 'settled', closed_at = now(), charged_nanos = charge,
           entry_id = billing_hold_settle.entry_id
     WHERE id = p_hold;
    charged_nanos := charge;
    shortfall_nanos := p_cost - charge;
    replayed := false;
    RETURN NEXT;
END $$;


-- Release an active hold without charging (p_state 'released'), or as the sweep
-- of a hold whose worker died ('expired'). Returns false if it was not active.
CREATE OR REPLACE FUNCTION billing_hold_release(p_hold uuid, p_state text)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    h billing_hold;
BEGIN
    SELECT * INTO h FROM billing_hold WHERE id = p_hold;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no hold %', p_hold USING ERRCODE = 'AP005';
    END IF;
    PERFORM 1 FROM billing_wallet WHERE account_id = h.account_id FOR UPDATE;
    UPDATE billing_hold SET state = p_state, closed_at = now()
     WHERE id = p_hold AND state = 'active'
    RETURNING * INTO h;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE billing_wallet SET held_nanos = held_nanos - h.amount_nanos, updated_at = now()
     WHERE account_id = h.account_id;
    RETURN true;
END $$;
