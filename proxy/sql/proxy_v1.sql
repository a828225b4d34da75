-- This file is run again after every migrate that finds the database differs
-- from it (billing/ledger/sql_install.py): every statement must be safe to
-- repeat.

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

-- The proxy's writes: the settlement of requests with workers' leases of
-- credit, a batch per account in one statement (proxy_batch), and the holds of
-- requests of keys with a credit limit (proxy_hold_many). Each is one round
-- trip that commits on its own. What moves credits is billing's
-- (billing_batch, billing_hold_many in billing/sql/ledger_v1.sql); what is the
-- proxy's is here: request logs, keys' usage, last use and credit limits. Lock
-- order, as everywhere: the wallet row (billing_wallet_lock), then holds, then
-- the API key rows.
--
-- A key's credit limit counts what its requests in flight hold: the active
-- holds placed for it, which carry the owner 'apikey:<id>' (apikeys.models:
-- ApiKey.hold_owner). Settled, released or swept, a hold no longer counts, so
-- nothing about a key needs mending when billing's sweep releases a hold.


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
DECLARE
    now_ timestamptz := clock_timestamp();
    holds uuid[];
    amounts bigint[];
    expiries timestamptz[];
    refs text[];
    owners text[];
    rooms bigint[];
    key_ids bigint[];
    placed bigint[] := '{}';
    answer record;
BEGIN
    -- The wallet first; what each key has held and used is read under it.
    PERFORM billing_wallet_lock(p_account);
    SELECT coalesce(array_agg(i.hold_id ORDER BY i.n), '{}'),
           array_agg(i.amount ORDER BY i.n),
           array_agg(i.expires ORDER BY i.n),
           array_agg(coalesce(i.ref, '') ORDER BY i.n),
           array_agg(CASE WHEN k.limit_nanos IS NOT NULL THEN 'apikey:' || k.id
                          ELSE '' END ORDER BY i.n),
           -- What the key may still hold this period (NULL: no limit).
           array_agg(k.limit_nanos - coalesce(kh.held, 0)
                     - CASE WHEN apikey_period_start(k.limit_reset, now_) > k.period_start
                            THEN 0 ELSE k.period_used_nanos END ORDER BY i.n),
           array_agg(i.key_id ORDER BY i.n)
      INTO holds, amounts, expiries, refs, owners, rooms, key_ids
      FROM (SELECT e.n, (e.value->>'hold')::uuid AS hold_id,
                   (e.value->>'api_key')::bigint AS key_id,
                   (e.value->>'amount')::bigint AS amount,
                   (e.value->>'expires')::timestamptz AS expires,
                   e.value->>'reference' AS ref
              FROM jsonb_array_elements(p_items) WITH ORDINALITY AS e(value, n)) i
      LEFT JOIN apikeys_apikey k ON k.id = i.key_id
      LEFT JOIN (SELECT h.owner, sum(h.amount_nanos) AS held FROM billing_hold h
                  WHERE h.account_id = p_account AND h.state = 'active'
                    AND h.owner <> ''
                  GROUP BY h.owner) kh ON kh.owner = 'apikey:' || k.id;
    FOR answer IN
        SELECT a.refused, a.left_over, a.n
          FROM billing_hold_many(p_account, holds, amounts, expiries, refs, owners,
                                 rooms) WITH ORDINALITY AS a(refused, left_over, n)
    LOOP
        refusal := CASE answer.refused WHEN 'limit_reached' THEN 'key_limit_reached'
                                       ELSE answer.refused END;
        available := answer.left_over;
        IF answer.refused IS NULL AND owners[answer.n] <> '' THEN
            placed := placed || key_ids[answer.n];
        END IF;
        RETURN NEXT;
    END LOOP;
    -- A key that holds in a new period starts it afresh.
    UPDATE apikeys_apikey k
       SET period_used_nanos = CASE WHEN apikey_period_start(k.limit_reset, now_)
                                         > k.period_start
                                    THEN 0 ELSE k.period_used_nanos END,
           period_start = apikey_period_start(k.limit_reset, now_)
     WHERE k.id = ANY(placed)
       AND apikey_period_start(k.limit_reset, now_)
           > coalesce(k.period_start, '-infinity'::timestamptz);
END $$;


-- One batch of an account's work from one worker, under one lock and one
-- commit (group commit: a hot account's transactions queue for its wallet row,
-- so each should carry all that is waiting): billing_batch settles the
-- finished requests (p_items: a JSON array of objects with the request log's
-- fields, the "cost" in nanos, and either "hold": the uuid of the request's
-- own hold — requests of keys with a credit limit hold on their own — or
-- "lease": true) and gives back or grows the worker's lease (see there); here
-- every request gets its log, and the keys' usage and last-used time are
-- updated once per key.
--
-- A batch is done once: a batch retried after its commit's answer was lost
-- finds its requests' logs and answers from what it wrote (a retried batch of
-- lease changes only grows or gives back again, which does no harm).
--
-- The proxy sends each "cost" capped at the request's hold, and for its log
-- what the usage came to before that cap ("uncapped_cost_nanos",
-- "over_reported").
--
-- Answers a JSON object: "items" ([charged, from top-up, from bonus] per item),
-- "lease" (its id, or null when nothing is leased), "lease_amount", "granted",
-- "available" (after the batch) and "autotopup_due". The last reads billing's
-- payments (billing_autotopup): the proxy is above billing, and the ledger
-- never reads payments' tables.
DROP FUNCTION IF EXISTS proxy_batch(
    bigint, uuid, jsonb, bigint, bigint, bigint, timestamptz, text, text);
DROP FUNCTION IF EXISTS proxy_batch(
    bigint, uuid, jsonb, bigint, bigint, bigint, bigint, timestamptz, text, text);
-- p_retry: this batch may have been sent before (its commit's answer was
-- lost). Only then is it looked for among the logs: a batch sent the first
-- time has ids no log has.
CREATE OR REPLACE FUNCTION proxy_batch(
    p_account bigint, p_lease uuid, p_items jsonb, p_return bigint,
    p_grow_need bigint, p_grow_min bigint, p_grow_want bigint,
    p_lease_expires timestamptz, p_batch_key text, p_description text,
    p_retry boolean DEFAULT true
) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    w billing_wallet;
    lease billing_hold;
    b record;
    holds uuid[];
    costs bigint[];
    on_lease boolean[];
    keys bigint[];
    due boolean;
    first_id uuid := p_items->0->>'id';
    first_at timestamptz := p_items->0->>'created_at';
    done boolean := false;
BEGIN
    -- The wallet first: a retry waits here until the first try has committed.
    w := billing_wallet_lock(p_account);
    -- (Run as a statement of its own with the values in it, so that only the
    -- month partition of that moment is looked at and locked, not all.)
    IF p_retry AND first_id IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM proxy_requestlog '
                'WHERE id = $1 AND created_at = $2)'
           INTO done USING first_id, first_at;
    END IF;
    IF done THEN
        -- Committed already: answer from what it wrote.
        SELECT * INTO lease FROM billing_hold
         WHERE id = p_lease AND account_id = p_account AND state = 'active';
        RETURN jsonb_build_object(
            'items', (SELECT coalesce(jsonb_agg(jsonb_build_array(
                                 coalesce(l.cost_nanos, 0), coalesce(l.cost_topup_nanos, 0),
                                 coalesce(l.cost_bonus_nanos, 0)) ORDER BY i.n), '[]')
                        FROM jsonb_array_elements(p_items) WITH ORDINALITY AS i(value, n)
                        LEFT JOIN proxy_requestlog l
                               ON l.id = (i.value->>'id')::uuid
                              AND l.created_at = (i.value->>'created_at')::timestamptz),
            'lease', lease.id, 'lease_amount', coalesce(lease.amount_nanos, 0),
            'granted', 0,
            'available', w.topup_nanos + w.bonus_nanos - w.held_nanos,
            'autotopup_due', false);
    END IF;

    SELECT coalesce(array_agg((e.value->>'hold')::uuid ORDER BY e.n), '{}'),
           coalesce(array_agg((e.value->>'cost')::bigint ORDER BY e.n), '{}'),
           coalesce(array_agg(coalesce((e.value->>'lease')::boolean, false)
                              ORDER BY e.n), '{}'),
           coalesce(array_agg((e.value->>'api_key_id')::bigint ORDER BY e.n), '{}')
      INTO holds, costs, on_lease, keys
      FROM jsonb_array_elements(p_items) WITH ORDINALITY AS e(value, n);
    SELECT * INTO b FROM billing_batch(
        p_account, p_lease, holds, costs, on_lease, p_return, p_grow_need,
        p_grow_min, p_grow_want, p_lease_expires, 'usage:' || p_batch_key,
        p_description, p_batch_key);

    IF cardinality(costs) > 0 THEN
        -- Each key's usage counts what its requests were charged now (not a
        -- hold settled before); its credit limit counts the charges of the
        -- requests that held for it, even if a sweep released a hold meanwhile.
        UPDATE apikeys_apikey k
           SET used_nanos = used_nanos + u.charged,
               period_used_nanos = period_used_nanos + u.limited_charged,
               last_used_at = CASE WHEN last_used_at IS NULL
                                     OR last_used_at < clock_timestamp() - interval '60 seconds'
                                   THEN clock_timestamp() ELSE last_used_at END
          FROM (SELECT s.key_id, sum(s.charge) AS charged,
                       sum(CASE WHEN h.owner = 'apikey:' || s.key_id THEN s.charge
                                ELSE 0 END) AS limited_charged
                  FROM unnest(keys, holds, b.charged, b.outcomes)
                       AS s(key_id, hold_id, charge, outcome)
                  LEFT JOIN billing_hold h ON h.id = s.hold_id
                 WHERE s.key_id IS NOT NULL AND s.outcome IN ('settled', 'charged')
                 GROUP BY s.key_id) u
         WHERE k.id = u.key_id;

        -- The logs, and in the same statement what they add to the hourly
        -- rollups (what cost analytics read), appended as deltas that
        -- proxy_usage_fold adds to the rollups later: no hot rollup row is
        -- rewritten by every batch. A request's charge by kind of token sums
        -- to its charge: a charge cut short (at its hold, or by the balance)
        -- is taken from input, cached, cache write, in that order, and the
        -- output is the rest.
        WITH r AS (
            SELECT r.*, b.charged[r.ordinality] AS charged_,
                   b.from_topup[r.ordinality] AS topup_,
                   b.from_bonus[r.ordinality] AS bonus_,
                   costs[r.ordinality] AS cost_
              FROM jsonb_populate_recordset(NULL::proxy_requestlog, p_items)
                   WITH ORDINALITY AS r
        ), parts AS (
            SELECT r.*, least(coalesce(r.input_cost_nanos, 0), r.charged_) AS input_c
              FROM r
        ), parts2 AS (
            SELECT p.*, least(coalesce(p.cached_cost_nanos, 0), p.charged_ - p.input_c) AS cached_c
              FROM parts p
        ), parts3 AS (
            SELECT p.*, least(coalesce(p.cache_write_cost_nanos, 0),
                              p.charged_ - p.input_c - p.cached_c) AS write_c
              FROM parts2 p
        ), logged AS (
            INSERT INTO proxy_requestlog (
                id, account_id, api_key_id, model, provider, endpoint, status, error,
                streamed, prompt_tokens, cached_tokens, cache_write_tokens,
                completion_tokens, reasoning_tokens, usage_estimated, cost_nanos,
                cost_topup_nanos, cost_bonus_nanos, uncapped_cost_nanos, over_reported,
                input_cost_nanos, cached_cost_nanos, cache_write_cost_nanos,
                output_cost_nanos, latency_ms, ttft_ms, finish_reason, cancelled,
                upstream_model, price_id, max_tokens, created_at)
            SELECT p.id, p_account, p.api_key_id, p.model, p.provider, p.endpoint,
                   p.status,
                   left(p.error || CASE WHEN p.charged_ < p.cost_
                                        THEN ' (the balance covered only part of the cost)'
                                        ELSE '' END, 300),
                   p.streamed, p.prompt_tokens, p.cached_tokens, p.cache_write_tokens,
                   p.completion_tokens, p.reasoning_tokens, p.usage_estimated,
                   p.charged_, p.topup_, p.bonus_,
                   -- "cost" is already capped at the request's hold; these say
                   -- what its usage came to before that cap.
                   coalesce(p.uncapped_cost_nanos, p.cost_),
                   coalesce(p.over_reported, false),
                   p.input_c, p.cached_c, p.write_c,
                   p.charged_ - p.input_c - p.cached_c - p.write_c,
                   p.latency_ms, p.ttft_ms, coalesce(p.finish_reason, ''),
                   coalesce(p.cancelled, false), coalesce(p.upstream_model, ''),
                   p.price_id, p.max_tokens, p.created_at
              FROM parts3 p
            ON CONFLICT (id, created_at) DO NOTHING
            RETURNING *
        )
        INSERT INTO proxy_usagedelta (
            account_id, hour, api_key_id, model, provider, requests, errors,
            prompt_tokens, cached_tokens, cache_write_tokens, completion_tokens,
            reasoning_tokens, cost_nanos, input_cost_nanos, cached_cost_nanos,
            cache_write_cost_nanos, output_cost_nanos)
        SELECT p_account, date_trunc('hour', l.created_at AT TIME ZONE 'UTC')
                          AT TIME ZONE 'UTC',
               l.api_key_id, l.model, l.provider, count(*),
               count(*) FILTER (WHERE l.status >= 400),
               sum(l.prompt_tokens), sum(l.cached_tokens), sum(l.cache_write_tokens),
               sum(l.completion_tokens), sum(l.reasoning_tokens), sum(l.cost_nanos),
               sum(l.input_cost_nanos), sum(l.cached_cost_nanos),
               sum(l.cache_write_cost_nanos), sum(l.output_cost_nanos)
          FROM logged l
         GROUP BY 2, 3, 4, 5;
    END IF;

    due := EXISTS (SELECT 1 FROM billing_autotopup a
                    WHERE a.account_id = p_account AND a.enabled
                      AND a.armed AND a.paused_at IS NULL AND a.in_flight_id IS NULL
                      AND b.topup + b.bonus < a.threshold_nanos);
    RETURN jsonb_build_object(
        'items', (SELECT coalesce(jsonb_agg(jsonb_build_array(c, t, o) ORDER BY x.n),
                                  '[]')
                    FROM unnest(b.charged, b.from_topup, b.from_bonus)
                         WITH ORDINALITY AS x(c, t, o, n)),
        'lease', b.lease_id, 'lease_amount', b.lease_amount,
        'granted', b.granted, 'available', b.available, 'autotopup_due', due);
END $$;


-- The deltas proxy_batch appends, added to the hourly rollups (whose trigger
-- adds them to the days) and deleted, in one statement: a delta is counted in
-- the rollups or is still a delta, never both, never neither. At most p_limit
-- of them, oldest first; how many were folded. One fold runs at a time (two
-- could update the same rollup rows in another order and deadlock); a second
-- caller folds nothing and answers 0.
CREATE OR REPLACE FUNCTION proxy_usage_fold(p_limit integer)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    folded integer;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('proxy_usage_fold')) THEN
        RETURN 0;
    END IF;
    WITH moved AS (
        DELETE FROM proxy_usagedelta
         WHERE id IN (SELECT id FROM proxy_usagedelta ORDER BY id LIMIT p_limit)
        RETURNING *
    ), added AS (
        INSERT INTO proxy_usagerollup AS u (
            account_id, hour, api_key_id, model, provider, requests, errors,
            prompt_tokens, cached_tokens, cache_write_tokens, completion_tokens,
            reasoning_tokens, cost_nanos, input_cost_nanos, cached_cost_nanos,
            cache_write_cost_nanos, output_cost_nanos)
        SELECT account_id, hour, api_key_id, model, provider, sum(requests),
               sum(errors), sum(prompt_tokens), sum(cached_tokens),
               sum(cache_write_tokens), sum(completion_tokens),
               sum(reasoning_tokens), sum(cost_nanos), sum(input_cost_nanos),
               sum(cached_cost_nanos), sum(cache_write_cost_nanos),
               sum(output_cost_nanos)
          FROM moved
         GROUP BY 1, 2, 3, 4, 5
         -- The same order every time: rows are locked one after another.
         ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (account_id, hour, api_key_id, model, provider) DO UPDATE
           SET requests = u.requests + EXCLUDED.requests,
               errors = u.errors + EXCLUDED.errors,
               prompt_tokens = u.prompt_tokens + EXCLUDED.prompt_tokens,
               cached_tokens = u.cached_tokens + EXCLUDED.cached_tokens,
               cache_write_tokens = u.cache_write_tokens + EXCLUDED.cache_write_tokens,
               completion_tokens = u.completion_tokens + EXCLUDED.completion_tokens,
               reasoning_tokens = u.reasoning_tokens + EXCLUDED.reasoning_tokens,
               cost_nanos = u.cost_nanos + EXCLUDED.cost_nanos,
               input_cost_nanos = u.input_cost_nanos + EXCLUDED.input_cost_nanos,
               cached_cost_nanos = u.cached_cost_nanos + EXCLUDED.cached_cost_nanos,
               cache_write_cost_nanos
                   = u.cache_write_cost_nanos + EXCLUDED.cache_write_cost_nanos,
               output_cost_nanos = u.output_cost_nanos + EXCLUDED.output_cost_nanos
        RETURNING 1
    )
    SELECT count(*) INTO folded FROM moved;
    RETURN folded;
END $$;


-- The request logs are partitioned by month of created_at (UTC), one table
-- each, proxy_requestlog_YYYY_MM, and a default partition that catches a row
-- no month holds yet (it stays empty while the months ahead are made in time:
-- proxy/retention.py). Making a month moves its rows out of the default one.
-- The month is made apart and then attached: attaching locks the log table
-- only against another attach or a drop (SHARE UPDATE EXCLUSIVE), where
-- CREATE TABLE ... PARTITION OF would stop every settle while it runs.
CREATE OR REPLACE FUNCTION proxy_requestlog_month(p_at timestamptz)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    lo timestamp := date_trunc('month', p_at AT TIME ZONE 'UTC');
    hi timestamp := lo + interval '1 month';
    name text := 'proxy_requestlog_' || to_char(lo, 'YYYY_MM');
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN name;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('proxy_requestlog_month'));
    IF to_regclass(name) IS NOT NULL THEN
        RETURN name;
    END IF;
    -- No log of that month may reach the default partition between moving
    -- its rows and attaching the month (the attach would fail on it); reads
    -- go on meanwhile.
    LOCK TABLE proxy_requestlog_default IN SHARE ROW EXCLUSIVE MODE;
    -- Its CHECK constraints too: a partition must have every one of the
    -- log table's.
    EXECUTE format('CREATE TABLE %I (LIKE proxy_requestlog INCLUDING DEFAULTS '
                   'INCLUDING CONSTRAINTS)', name);
    EXECUTE format('INSERT INTO %I SELECT * FROM proxy_requestlog_default '
                   'WHERE created_at >= %L AND created_at < %L',
                   name, lo AT TIME ZONE 'UTC', hi AT TIME ZONE 'UTC');
    EXECUTE format('DELETE FROM proxy_requestlog_default '
                   'WHERE created_at >= %L AND created_at < %L',
                   lo AT TIME ZONE 'UTC', hi AT TIME ZONE 'UTC');
    EXECUTE format('ALTER TABLE proxy_requestlog ATTACH PARTITION %I '
                   'FOR VALUES FROM (%L) TO (%L)',
                   name, lo AT TIME ZONE 'UTC', hi AT TIME ZONE 'UTC');
    RETURN name;
END $$;


-- Retention: every month partition that ends at or before p_before is
-- dropped whole; then, from the one that straddles it (and the default one),
-- the logs older than p_before are deleted, at most p_limit of them a call.
-- The caller (proxy/retention.py) calls again until a call drops nothing and
-- deletes fewer than p_limit. The hourly rollups are kept. Answers the
-- partitions dropped and the rows deleted.
--
-- Dropping a partition locks the whole log table (ACCESS EXCLUSIVE: every
-- settle waits) until the transaction ends, so a call that dropped something
-- answers at once and leaves the deleting to the next call. The logs due are
-- taken in id order (ids are UUIDv7: the order of time) along the primary
-- key, and deleted as a range of it, up to the last of them: each call costs
-- its own rows, never a scan of the month (a join of the rows to delete with
-- the table may be planned as one). EXECUTE plans each with its values.
CREATE OR REPLACE FUNCTION proxy_requestlog_retain(p_before timestamptz, p_limit integer)
RETURNS TABLE (dropped text[], deleted bigint)
LANGUAGE plpgsql AS $$
DECLARE
    part record;
    last uuid;
BEGIN
    dropped := '{}';
    deleted := 0;
    FOR part IN
        SELECT c.relname,
               to_date(substr(c.relname, 18), 'YYYY_MM')::timestamp AS lo
          FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'proxy_requestlog'::regclass
           AND c.relname ~ '^proxy_requestlog_[0-9]{4}_[0-9]{2}$'
         ORDER BY c.relname
    LOOP
        IF (part.lo + interval '1 month') AT TIME ZONE 'UTC' <= p_before THEN
            EXECUTE format('DROP TABLE %I', part.relname);
            dropped := dropped || part.relname::text;
        END IF;
    END LOOP;
    IF cardinality(dropped) = 0 THEN
        EXECUTE 'SELECT d.id FROM (SELECT id FROM proxy_requestlog'
                '                   WHERE created_at < $1 ORDER BY id LIMIT $2) d'
                ' ORDER BY d.id DESC LIMIT 1'
           INTO last USING p_before, p_limit;
        IF last IS NOT NULL THEN
            EXECUTE 'DELETE FROM proxy_requestlog WHERE created_at < $1 AND id <= $2'
              USING p_before, last;
            GET DIAGNOSTICS deleted = ROW_COUNT;
        END IF;
    END IF;
    RETURN NEXT;
END $$;


-- The daily rollups follow the hourly ones (any change of an hourly row, by
-- proxy_batch or anyone else, in its transaction): what a row adds to its day
-- is what it adds to its hour. proxy_usageday_add adds p - m to the day of
-- their row (either may be NULL: an insert, a delete).
CREATE OR REPLACE FUNCTION proxy_usageday_add(p proxy_usagerollup, m proxy_usagerollup)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- (plpgsql, not sql: its plan is kept by the session, not made anew
    -- on every call of the trigger.)
    INSERT INTO proxy_usagerollupday AS d (
        account_id, day, api_key_id, model, provider, requests, errors,
        prompt_tokens, cached_tokens, cache_write_tokens, completion_tokens,
        reasoning_tokens, cost_nanos, input_cost_nanos, cached_cost_nanos,
        cache_write_cost_nanos, output_cost_nanos)
    VALUES (
        coalesce(p.account_id, m.account_id),
        (coalesce(p.hour, m.hour) AT TIME ZONE 'UTC')::date,
        coalesce(p.api_key_id, m.api_key_id), coalesce(p.model, m.model),
        coalesce(p.provider, m.provider),
        coalesce(p.requests, 0) - coalesce(m.requests, 0),
        coalesce(p.errors, 0) - coalesce(m.errors, 0),
        coalesce(p.prompt_tokens, 0) - coalesce(m.prompt_tokens, 0),
        coalesce(p.cached_tokens, 0) - coalesce(m.cached_tokens, 0),
        coalesce(p.cache_write_tokens, 0) - coalesce(m.cache_write_tokens, 0),
        coalesce(p.completion_tokens, 0) - coalesce(m.completion_tokens, 0),
        coalesce(p.reasoning_tokens, 0) - coalesce(m.reasoning_tokens, 0),
        coalesce(p.cost_nanos, 0) - coalesce(m.cost_nanos, 0),
        coalesce(p.input_cost_nanos, 0) - coalesce(m.input_cost_nanos, 0),
        coalesce(p.cached_cost_nanos, 0) - coalesce(m.cached_cost_nanos, 0),
        coalesce(p.cache_write_cost_nanos, 0) - coalesce(m.cache_write_cost_nanos, 0),
        coalesce(p.output_cost_nanos, 0) - coalesce(m.output_cost_nanos, 0))
    ON CONFLICT (account_id, day, api_key_id, model, provider) DO UPDATE
       SET requests = d.requests + EXCLUDED.requests,
           errors = d.errors + EXCLUDED.errors,
           prompt_tokens = d.prompt_tokens + EXCLUDED.prompt_tokens,
           cached_tokens = d.cached_tokens + EXCLUDED.cached_tokens,
           cache_write_tokens = d.cache_write_tokens + EXCLUDED.cache_write_tokens,
           completion_tokens = d.completion_tokens + EXCLUDED.completion_tokens,
           reasoning_tokens = d.reasoning_tokens + EXCLUDED.reasoning_tokens,
           cost_nanos = d.cost_nanos + EXCLUDED.cost_nanos,
           input_cost_nanos = d.input_cost_nanos + EXCLUDED.input_cost_nanos,
           cached_cost_nanos = d.cached_cost_nanos + EXCLUDED.cached_cost_nanos,
           cache_write_cost_nanos
               = d.cache_write_cost_nanos + EXCLUDED.cache_write_cost_nanos,
           output_cost_nanos = d.output_cost_nanos + EXCLUDED.output_cost_nanos;
END $$;

-- A day row is there only while an hour of it is: a day whose last hourly row
-- was deleted or moved away goes too (not a row of zeros), so the days are the
-- hours grouped by day, row for row, and a report shows the groups it showed
-- from the hours.
CREATE OR REPLACE FUNCTION proxy_usageday_prune(m proxy_usagerollup)
RETURNS void
LANGUAGE sql AS $$
    DELETE FROM proxy_usagerollupday d
     WHERE d.account_id = m.account_id
       AND d.day = (m.hour AT TIME ZONE 'UTC')::date
       AND d.api_key_id = m.api_key_id AND d.model = m.model
       AND d.provider = m.provider
       AND NOT EXISTS (
           SELECT 1 FROM proxy_usagerollup h
            WHERE h.account_id = m.account_id
              AND h.hour >= date_trunc('day', m.hour, 'UTC')
              AND h.hour < date_trunc('day', m.hour, 'UTC') + interval '1 day'
              AND h.api_key_id = m.api_key_id AND h.model = m.model
              AND h.provider = m.provider)
$$;

CREATE OR REPLACE FUNCTION proxy_usagerollup_to_day()
RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM proxy_usageday_add(NEW, NULL);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM proxy_usageday_add(NULL, OLD);
        PERFORM proxy_usageday_prune(OLD);
    ELSIF (NEW.account_id, (NEW.hour AT TIME ZONE 'UTC')::date, NEW.api_key_id,
           NEW.model, NEW.provider)
          = (OLD.account_id, (OLD.hour AT TIME ZONE 'UTC')::date, OLD.api_key_id,
             OLD.model, OLD.provider) THEN
        PERFORM proxy_usageday_add(NEW, OLD);  -- the usual update: sums grow
    ELSE
        PERFORM proxy_usageday_add(NEW, NULL);
        PERFORM proxy_usageday_add(NULL, OLD);
        PERFORM proxy_usageday_prune(OLD);
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS proxy_usagerollup_to_day ON proxy_usagerollup;
CREATE TRIGGER proxy_usagerollup_to_day
    AFTER INSERT OR UPDATE OR DELETE ON proxy_usagerollup
    FOR EACH ROW EXECUTE FUNCTION proxy_usagerollup_to_day();


-- The request and response bodies of a settled request, for an account that
-- keeps them: written after its settlement, in a statement of its own (a body
-- may be megabytes; the settlement batch carries none). The switch is read
-- here and its row stays locked (FOR SHARE) until this commits: turning it off
-- either waits for this and then deletes what it kept, or makes this wait and
-- find it off. Either way nothing is kept once it has said no. Answers whether
-- the bodies were kept.
CREATE OR REPLACE FUNCTION proxy_bodies_keep(
    p_account bigint, p_request uuid, p_created timestamptz, p_request_body bytea,
    p_response_body bytea, p_truncated boolean
) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    keep_days integer;
BEGIN
    SELECT br.days INTO keep_days FROM proxy_bodyretention br
     WHERE br.account_id = p_account AND br.enabled
       FOR SHARE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO proxy_requestbody (
        request_id, account_id, created_at, expires_at, request, response, truncated)
    VALUES (p_request, p_account, p_created,
            p_created + make_interval(days => keep_days), p_request_body,
            p_response_body, p_truncated)
    ON CONFLICT (request_id) DO NOTHING;
    RETURN true;
END $$;
