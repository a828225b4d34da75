"""AI insurance: requests that went wrong are paid back, automatically or on
a customer's claim, in bonus & compensation credits.

The rules (``coverage``), judged on a request log's fields. None covers a
request the client cancelled (``cancelled``, status 499: the client went
away) or one that cost nothing (``cost_nanos`` 0: there is nothing to pay
back).

- **Upstream failure after output began** (``stream_failure``): a streamed
  request (``streamed``) that ended 502 (upstream broke off, timed out or
  ended the stream early; proxy/app.py ``relay_stream``) after its output had
  begun (``ttft_ms`` set, or ``completion_tokens`` > 0). What was delivered
  was billed; it is paid back.
- **Empty output** (``empty_output``): answered 200 with no visible output:
  ``completion_tokens`` − ``reasoning_tokens`` ≤ 0, not ending in a tool call
  (``finish_reason`` not ``tool_calls``, ``function_call`` or ``tool_use``),
  on an endpoint that answers text (not ``embeddings``).
- **Truncated output** (``truncated_output``): answered 200, stopped for its
  length (``finish_reason`` ``length`` or ``max_tokens``) although the
  request set ``max_tokens`` and the answer has fewer ``completion_tokens``
  than the rule's share of it (``truncated_percent``, default 10%): cut off
  by the model or provider well before the limit the customer asked for.
  A request without ``max_tokens`` is not judged by this rule.
- **High latency** (``high_latency``): answered 200, and either its time to
  first token (``ttft_ms``, timed for streamed requests only) is above the
  rule's ``ttft_ms`` (default 60,000 ms) or its whole latency
  (``latency_ms``) is above the rule's ``latency_ms`` (default 600,000 ms).
  Either threshold may be empty: not judged by it.

Rules are ``CoverageRule`` rows, edited in admin: one per kind with an empty
``model`` is the default for every model (migration 0002 ships the four
above, all on, all paying 100%); a row for a model (``openai/gpt-5``) replaces
the default of its kind for that model (turned off, the model is not covered
by that kind). Each rule pays ``payout_percent`` (1-100%, default 100) of the
request's cost, rounded down to a whole nano.

**Once per request.** A request that matches several rules is paid by one:
the one paying the largest share; between equal shares the first of upstream
failure, empty output, truncated output, high latency. ``Payout.request_id``
is unique: a request is paid once, whether by the daily run or a claim.

**Daily payouts.** ``tasks.insurance_pay_yesterday`` (beat, 01:15 UTC) scans
yesterday's (UTC) request logs (``scan``) and pays each account one
compensation entry for the day (``credit_grant``, bonus pool, method "AI
insurance", expiring after INSURANCE_COMPENSATION_EXPIRY_DAYS, idempotency key
``insurance:<day>``), with a ``Payout`` per request pointing at it. Run again
for the same day it pays nothing.

**Claims.** Within 7 days of a request the customer may claim it with a
reason (``POST /api/v1/requests/{id}/claim``, or the request's page in the
console): once per request, and not for one already paid. An operator accepts
it in admin (its cost is paid at once, 100%, as its own compensation entry,
key ``claim:<id>``) or declines it with a reason the customer sees.

The app stands between ``alerts`` and ``proxy`` in the floor plan: it reads
request logs (``proxy``) and pays through the ledger (``billing``).
"""
