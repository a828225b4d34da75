-- This file is run again after every migrate that finds the database differs
-- from it (billing/sql_install.py): every statement must be safe to repeat.

-- Room on each page for the updates of workers' lease rows (HOT updates).
ALTER TABLE billing_hold SET (fillfactor = 70);

-- Functions of earlier versions that the code no longer has.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT oid FROM pg_proc
              WHERE proname IN ('proxy_hold_place', 'proxy_settle_many')
                AND pronamespace = current_schema()::regnamespace LOOP
        EXECUTE format('DROP FUNCTION %s', f);
    END LOOP;
END $$;

-- The proxy's writes: workers' leases of credit and the settlement of
-- requests, a batch per account in one statement (proxy_batch), and the holds
-- of requests of keys with a credit limit (proxy_hold_many). Each is one round
-- trip that commits on its own. Lock order, as everywhere: the wallet row, then
-- holds, then the API key row.


-- When the current credit-limit period of a key began (UTC).
CREATE OR REPLACE FUNCTION apikey_period_start(p_reset text, p_now timestamptz)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_reset
        WHEN 'daily' THEN date_trunc('day', p_now AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
        WHEN 'weekly' THEN date_trunc('week', p_now AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
        WHEN 'monthly' THEN date_trunc('month', p_now AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
        ELSE NULL
    END
$$;


-- Place the holds of a batch of requests of one account, in order, under one
-- lock and one commit (group commit, as for settling). p_items is a JSON array
-- of {"hold": uuid, "api_key": id, "amount": nanos, "expires": time,
-- "reference": text}. A hold is refused, writing nothing, when the account's
-- available balance is short ('insufficient_credits', with what is available)
-- or when its key's credit limit for this period would be passed
-- ('key_limit_reached', with what the key has left). Answers one row per item.
CREATE OR REPLACE FUNCTION proxy_hold_many(p_account bigint, p_items jsonb)
RETURNS TABLE (refusal text, available bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    w billing_wallet;
    held bigint;
    item record;
    k record;
    period timestamptz;
    key_used bigint;
BEGIN
    SELECT * INTO w FROM billing_wallet WHERE account_id = p_account FOR UPDATE;
    held := w.held_nanos;
    FOR item IN
        SELECT (value->>'hold')::uuid AS hold_id, (value->>'api_key')::bigint AS key_id,
               (value->>'amount')::bigint AS amount,
               (value->>'expires')::timestamptz AS expires, value->>'reference' AS ref
          FROM jsonb_array_elements(p_items)
    LOOP
        refusal := NULL;
        available := w.topup_nanos + w.bonus_nanos - held;
        IF available < item.amount THEN
            refusal := 'insufficient_credits';
            RETURN NEXT;
            CONTINUE;
        END IF;
        SELECT limit_nanos, limit_reset, period_start, period_used_nanos,
               held_nanos AS key_held
          INTO k FROM apikeys_apikey WHERE id = item.key_id;
        IF k.limit_nanos IS NOT NULL THEN
            period := apikey_period_start(k.limit_reset, clock_timestamp());
            key_used := CASE WHEN period > k.period_start THEN 0
                             ELSE k.period_used_nanos END;
            IF k.limit_nanos - k.key_held - key_used < item.amount THEN
                refusal := 'key_limit_reached';
                available := greatest(k.limit_nanos - k.key_held - key_used, 0);
                RETURN NEXT;
                CONTINUE;
            END IF;
            UPDATE apikeys_apikey
               SET held_nanos = held_nanos + item.amount,
                   period_used_nanos = key_used,
                   period_start = greatest(period_start, period)
             WHERE id = item.key_id;
        END IF;
        INSERT INTO billing_hold (id, account_id, amount_nanos, state, reference,
                                  api_key_id, created_at, expires_at, cost_nanos,
                                  charged_nanos)
        VALUES (item.hold_id, p_account, item.amount, 'active', item.ref,
                CASE WHEN k.limit_nanos IS NOT NULL THEN item.key_id END,
                clock_timestamp(), item.expires, 0, 0);
        held := held + item.amount;
        available := available - item.amount;
        RETURN NEXT;
    END LOOP;
    IF held <> w.held_nanos THEN
        UPDATE billing_wallet SET held_nanos = held WHERE account_id = p_account;
    END IF;
END $$;


-- One batch of an account's work from one worker, under one lock and one
-- commit (group commit: a hot account's transactions queue for its wallet row,
-- so each should carry all that is waiting).
--
-- The worker's lease: credits a worker holds for the account (a hold row of
-- its own, with an expiry that each batch renews), from which it admits
-- requests without a database write. A batch settles finished requests
-- (p_items: a JSON array of objects with the request log's fields, the "cost"
-- in nanos, and either "hold": the uuid of the request's own hold — requests of
-- keys with a credit limit hold on their own — or "lease": true), then gives
-- back p_return nanos of the lease, then grows it by at least p_grow_need
-- and at most p_grow_want, never by more than a quarter of what is available
-- beyond the need; if what is available is short of the need, by just
-- p_grow_min (the smallest request waiting) if that fits, else not at all.
--
-- A batch is done once: a batch retried after its commit's answer was lost
-- finds its requests' logs and answers from what it wrote (a retried batch of
-- lease changes only grows or gives back again, which does no harm).
--
-- Each request is charged its cost in the spending order, never more than is
-- available (a shortfall is noted on its log); the part of a lease request's
-- cost up to what remains of the lease is taken out of the lease. The proxy
-- sends each "cost" capped at the request's hold, and for its log what the
-- usage came to before that cap ("uncapped_cost_nanos", "over_reported").
-- The batch's charges become one `usage` journal entry; the keys' usage and
-- last-used time are updated once per key; every request gets its log.
--
-- Answers a JSON object: "items" ([charged, from top-up, from bonus] per item),
-- "lease" (its id, or null when nothing is leased), "lease_amount", "granted",
-- "available" (after the batch) and "autotopup_due".
DROP FUNCTION IF EXISTS proxy_batch(
    bigint, uuid, jsonb, bigint, bigint, bigint, timestamptz, text, text);
CREATE OR REPLACE FUNCTION proxy_batch(
    p_account bigint, p_lease uuid, p_items jsonb, p_return bigint,
    p_grow_need bigint, p_grow_min bigint, p_grow_want bigint,
    p_lease_expires timestamptz, p_batch_key text, p_description text
) RETURNS jsonb
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    w billing_wallet;
    topup bigint;
    bonus bigint;
    held bigint;
    item record;
    h billing_hold;
    lease billing_hold;
    lease_id uuid;
    lease_left bigint := 0;
    release bigint;
    charge bigint;
    taken record;
    took_topup bigint;
    took_bonus bigint;
    lot_ids bigint[] := '{}';
    deltas bigint[] := '{}';
    total_topup bigint := 0;
    total_bonus bigint := 0;
    new_entry bigint;
    available bigint;
    granted bigint := 0;
    total_charge bigint := 0;
    charged_before bigint := 0;
    -- One element per item, in order.
    holds uuid[] := '{}';
    costs bigint[] := '{}';
    charges bigint[] := '{}';
    topups bigint[] := '{}';
    bonuses bigint[] := '{}';
    keys bigint[] := '{}';
    key_releases bigint[] := '{}';
    settle_now boolean[] := '{}';
    limited_keys boolean[] := '{}';
    own_holds boolean := false;
    results jsonb := '[]';
    due boolean;
BEGIN
    SELECT * INTO w FROM billing_wallet WHERE account_id = p_account FOR UPDATE;
    IF jsonb_array_length(p_items) > 0 AND EXISTS (
        SELECT 1 FROM proxy_requestlog WHERE id = (p_items->0->>'id')::uuid
    ) THEN
        -- Committed already: answer from what it wrote.
        SELECT * INTO lease FROM billing_hold
         WHERE id = p_lease AND account_id = p_account AND state = 'active';
        RETURN jsonb_build_object(
            'items', (SELECT coalesce(jsonb_agg(jsonb_build_array(
                                 coalesce(l.cost_nanos, 0), coalesce(l.cost_topup_nanos, 0),
                                 coalesce(l.cost_bonus_nanos, 0)) ORDER BY i.n), '[]')
                        FROM jsonb_array_elements(p_items) WITH ORDINALITY AS i(value, n)
                        LEFT JOIN proxy_requestlog l ON l.id = (i.value->>'id')::uuid),
            'lease', lease.id, 'lease_amount', coalesce(lease.amount_nanos, 0),
            'granted', 0,
            'available', w.topup_nanos + w.bonus_nanos - w.held_nanos,
            'autotopup_due', false);
    END IF;
    topup := w.topup_nanos;
    bonus := w.bonus_nanos;
    held := w.held_nanos;
    IF p_lease IS NOT NULL THEN
        SELECT * INTO lease FROM billing_hold
         WHERE id = p_lease AND account_id = p_account AND state = 'active';
        IF FOUND THEN
            lease_id := lease.id;
            lease_left := lease.amount_nanos;
        END IF;
    END IF;

    -- What each request is charged. The charges are then taken from the lots
    -- at once: the spending order takes every bonus credit before any top-up
    -- credit, so the first total_bonus nanos of the batch's charges, in order,
    -- came from the bonus pool.
    FOR item IN
        SELECT (value->>'hold')::uuid AS hold_id, (value->>'cost')::bigint AS cost,
               (value->>'api_key_id')::bigint AS key_id,
               coalesce((value->>'lease')::boolean, false) AS on_lease
          FROM jsonb_array_elements(p_items)
    LOOP
        release := 0;
        charge := 0;
        h := NULL;
        IF item.hold_id IS NOT NULL THEN
            SELECT * INTO h FROM billing_hold WHERE id = item.hold_id;
            own_holds := true;
        END IF;
        IF h.state = 'settled' THEN
            -- Settled already (a retried batch): charged nothing again.
            charge := 0;
        ELSE
            IF h.state = 'active' THEN
                release := h.amount_nanos;
            ELSIF item.on_lease THEN
                release := least(item.cost, lease_left);
                lease_left := lease_left - release;
            END IF;
            -- What this request may take: everything not held by others.
            charge := greatest(
                least(item.cost, topup + bonus - total_charge - (held - release)), 0);
            total_charge := total_charge + charge;
            held := held - release;
        END IF;
        holds := holds || item.hold_id;
        costs := costs || item.cost;
        charges := charges || charge;
        keys := keys || item.key_id;
        key_releases := key_releases || CASE WHEN h.api_key_id IS NOT NULL
                                              AND h.state = 'active'
                                             THEN h.amount_nanos ELSE 0 END;
        settle_now := settle_now || (h.state IS NULL OR h.state <> 'settled');
        -- Its key's credit limit counts the charge even if a sweep released the
        -- hold meanwhile.
        limited_keys := limited_keys || (h.api_key_id IS NOT NULL);
    END LOOP;
    IF total_charge > 0 THEN
        SELECT * INTO taken FROM billing_take(p_account, total_charge, NULL, '{}', '{}');
        lot_ids := taken.lot_ids;
        deltas := taken.deltas;
        total_topup := taken.from_topup;
        total_bonus := taken.from_bonus;
        topup := topup - total_topup;
        bonus := bonus - total_bonus;
    END IF;
    FOR i IN 1 .. coalesce(cardinality(charges), 0) LOOP
        took_bonus := greatest(least(charged_before + charges[i], total_bonus)
                               - charged_before, 0);
        bonuses := bonuses || took_bonus;
        topups := topups || (charges[i] - took_bonus);
        results := results || jsonb_build_array(jsonb_build_array(
            charges[i], charges[i] - took_bonus, took_bonus));
        charged_before := charged_before + charges[i];
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
                                  api_key_id, created_at, expires_at, cost_nanos,
                                  charged_nanos)
        VALUES (lease_id, p_account, lease_left, 'active', 'lease', NULL,
                clock_timestamp(), p_lease_expires, 0, 0);
    END IF;

    IF total_topup + total_bonus > 0 THEN
        new_entry := billing_entry_write(
            p_account, 'usage', total_topup, total_bonus, topup, bonus,
            'usage:' || p_batch_key, p_description, p_batch_key, NULL, lot_ids, deltas);
    END IF;
    IF topup <> w.topup_nanos OR bonus <> w.bonus_nanos OR held <> w.held_nanos THEN
        UPDATE billing_wallet
           SET topup_nanos = topup, bonus_nanos = bonus, held_nanos = held,
               updated_at = clock_timestamp()
         WHERE account_id = p_account;
    END IF;

    IF cardinality(holds) > 0 THEN
        IF own_holds THEN
            UPDATE billing_hold b
               SET state = 'settled', closed_at = clock_timestamp(),
                   cost_nanos = s.cost, charged_nanos = s.charged,
                   entry_id = CASE WHEN s.charged > 0 THEN new_entry END
              FROM unnest(holds, costs, charges, settle_now)
                   AS s(hold, cost, charged, now_)
             WHERE b.id = s.hold AND s.now_;
        END IF;

        UPDATE apikeys_apikey k
           SET used_nanos = used_nanos + u.charged,
               period_used_nanos = period_used_nanos + u.limited_charged,
               held_nanos = held_nanos - u.released,
               last_used_at = CASE WHEN last_used_at IS NULL
                                     OR last_used_at < clock_timestamp() - interval '60 seconds'
                                   THEN clock_timestamp() ELSE last_used_at END
          FROM (SELECT key_id, sum(charged) AS charged, sum(released) AS released,
                       sum(CASE WHEN limited THEN charged ELSE 0 END)
                           AS limited_charged
                  FROM unnest(keys, charges, key_releases, settle_now, limited_keys)
                       AS s(key_id, charged, released, now_, limited)
                 WHERE key_id IS NOT NULL AND now_
                 GROUP BY key_id) u
         WHERE k.id = u.key_id;

        INSERT INTO proxy_requestlog (
            id, account_id, api_key_id, model, provider, endpoint, status, error,
            streamed, prompt_tokens, cached_tokens, cache_write_tokens,
            completion_tokens, reasoning_tokens, usage_estimated, cost_nanos,
            cost_topup_nanos, cost_bonus_nanos, uncapped_cost_nanos, over_reported,
            latency_ms, ttft_ms, created_at)
        SELECT r.id, p_account, r.api_key_id, r.model, r.provider, r.endpoint,
               r.status,
               left(r.error || CASE WHEN charges[r.ordinality] < costs[r.ordinality]
                                    THEN ' (the balance covered only part of the cost)'
                                    ELSE '' END, 300),
               r.streamed, r.prompt_tokens, r.cached_tokens, r.cache_write_tokens,
               r.completion_tokens, r.reasoning_tokens, r.usage_estimated,
               charges[r.ordinality], topups[r.ordinality], bonuses[r.ordinality],
               -- "cost" is already capped at the request's hold; these say what
               -- its usage came to before that cap.
               coalesce(r.uncapped_cost_nanos, costs[r.ordinality]),
               coalesce(r.over_reported, false),
               r.latency_ms, r.ttft_ms,
               r.created_at
          FROM jsonb_populate_recordset(NULL::proxy_requestlog, p_items)
               WITH ORDINALITY AS r
        ON CONFLICT (id) DO NOTHING;
    END IF;

    due := EXISTS (SELECT 1 FROM billing_autotopup a
                    WHERE a.account_id = p_account AND a.enabled
                      AND a.armed AND a.paused_at IS NULL AND a.in_flight_id IS NULL
                      AND topup + bonus < a.threshold_nanos);
    RETURN jsonb_build_object(
        'items', results, 'lease', lease_id, 'lease_amount', lease_left,
        'granted', granted, 'available', available, 'autotopup_due', due);
END $$;
