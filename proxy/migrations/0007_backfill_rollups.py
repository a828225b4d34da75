"""The request logs written before logs kept their charge by kind (their ids
are UUIDv4; later ones are UUIDv7): their charge is split by kind as
proxy_batch splits it (at the price version in force when they were made, the
output taking the rest), and they are counted in the hourly rollups, then the
daily rollups are summed again from the hourly ones."""

from django.db import migrations

BACKFILL = """
WITH old AS (
    SELECT l.id, l.created_at, l.cost_nanos AS charged, p.id AS price_id,
           least(l.cached_tokens, l.prompt_tokens) AS cached,
           least(l.cache_write_tokens,
                 l.prompt_tokens - least(l.cached_tokens, l.prompt_tokens)) AS written,
           l.prompt_tokens, p.input_nanos, p.cached_input_nanos, p.cache_write_nanos
      FROM proxy_requestlog l
      LEFT JOIN LATERAL (
          SELECT mp.* FROM proxy_modelprice mp
           WHERE mp.model_id = l.model AND mp.effective_from <= l.created_at
           ORDER BY mp.effective_from DESC LIMIT 1) p ON true
     WHERE substr(l.id::text, 15, 1) <> '7'
), parts AS (
    SELECT o.*,
           least(coalesce((o.prompt_tokens - o.cached - o.written)
                          * o.input_nanos / 1000000, 0), o.charged) AS input_c
      FROM old o
), parts2 AS (
    SELECT p.*,
           least(coalesce(p.cached * p.cached_input_nanos / 1000000, 0),
                 p.charged - p.input_c) AS cached_c
      FROM parts p
), parts3 AS (
    SELECT p.*,
           least(coalesce(p.written * p.cache_write_nanos / 1000000, 0),
                 p.charged - p.input_c - p.cached_c) AS write_c
      FROM parts2 p
)
UPDATE proxy_requestlog l
   SET input_cost_nanos = p.input_c,
       cached_cost_nanos = p.cached_c,
       cache_write_cost_nanos = p.write_c,
       output_cost_nanos = p.charged - p.input_c - p.cached_c - p.write_c,
       price_id = coalesce(l.price_id, p.price_id)
  FROM parts3 p
 WHERE l.id = p.id AND l.created_at = p.created_at;

INSERT INTO proxy_usagerollup AS u (
    account_id, hour, api_key_id, model, provider, requests, errors,
    prompt_tokens, cached_tokens, cache_write_tokens, completion_tokens,
    reasoning_tokens, cost_nanos, input_cost_nanos, cached_cost_nanos,
    cache_write_cost_nanos, output_cost_nanos)
SELECT account_id, date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
       api_key_id, model, provider, count(*), count(*) FILTER (WHERE status >= 400),
       sum(prompt_tokens), sum(cached_tokens), sum(cache_write_tokens),
       sum(completion_tokens), sum(reasoning_tokens), sum(cost_nanos),
       sum(input_cost_nanos), sum(cached_cost_nanos), sum(cache_write_cost_nanos),
       sum(output_cost_nanos)
  FROM proxy_requestlog
 WHERE substr(id::text, 15, 1) <> '7'
 GROUP BY 1, 2, 3, 4, 5
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
       cache_write_cost_nanos = u.cache_write_cost_nanos + EXCLUDED.cache_write_cost_nanos,
       output_cost_nanos = u.output_cost_nanos + EXCLUDED.output_cost_nanos;

-- The days again from the hours (whether or not the trigger that keeps them
-- was installed when the hours above were written).
DELETE FROM proxy_usagerollupday;
INSERT INTO proxy_usagerollupday (
    account_id, day, api_key_id, model, provider, requests, errors,
    prompt_tokens, cached_tokens, cache_write_tokens, completion_tokens,
    reasoning_tokens, cost_nanos, input_cost_nanos, cached_cost_nanos,
    cache_write_cost_nanos, output_cost_nanos)
SELECT account_id, (hour AT TIME ZONE 'UTC')::date, api_key_id, model, provider,
       sum(requests), sum(errors), sum(prompt_tokens), sum(cached_tokens),
       sum(cache_write_tokens), sum(completion_tokens), sum(reasoning_tokens),
       sum(cost_nanos), sum(input_cost_nanos), sum(cached_cost_nanos),
       sum(cache_write_cost_nanos), sum(output_cost_nanos)
  FROM proxy_usagerollup
 GROUP BY 1, 2, 3, 4, 5;
"""


class Migration(migrations.Migration):
    dependencies = [("proxy", "0006_usage_rollup_days")]

    operations = [migrations.RunSQL(BACKFILL, migrations.RunSQL.noop)]
