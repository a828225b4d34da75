"""Alerts: emails that tell a customer before their service stops.

- **Low balance.** On by default at $3 (the customer may set $0.01–$100,000, or
  turn it off). One email each time the balance (top-up + bonus credits) falls
  from at or above the threshold to below it; nothing while it stays below;
  after it has risen back (a top-up, a grant) the next fall alerts again. An
  account whose balance was never at or above the threshold hears nothing.
- **Key usage.** For keys with a credit limit: one email per key and period
  when its use this period reaches the share of the limit the customer set
  (80% by default, 1–100%, or off).

Sent by Celery only, never from the request path: the beat task
``alerts.tasks.alerts_scan`` runs every minute (``scan``), and one task per
alert sends its email (``emails``). The scan reads only what changed: the
journal entries of the last few minutes (the journal's primary key), since a
balance moves only by an entry, and an entry knows the balance before and after
it. The settings live in ``AlertSettings`` (a row per account, made when first
saved; the defaults when absent), edited on the console's Alerts page
(``views``) and through ``GET, PUT /api/v1/alerts`` (``api``).

The app stands between ``agipower`` and ``proxy`` in the floor plan: it reads
the ledger (``billing``), keys (``apikeys``) and the proxy's rule of a key's
period (``apikey_period_start`` in ``proxy/sql/proxy_v1.sql``).
"""
