"""The credit ledger: wallets, lots in two pools, the append-only journal,
holds and leases, grants, expiry, claw-backs and reversals, and the nightly
reconciliation of every invariant.

Its writes, by module: ``grants`` (credits in: grants, top-ups), ``debits``
(operators' negative adjustments), ``holds`` (holds, the settlement of batches
of requests and workers' leases, the sweep), ``expiry``, ``reversals``
(claw-backs of refunded top-ups, corrections); ``journal`` writes the entries
of the Python ones, and the rest run as SQL functions
(``billing/sql/ledger_v1.sql``). Reads are in ``selectors``.

The ledger never imports ``billing.payments`` and its SQL never names a table
of payments or of an app above billing: payments credit and claw back through
the ledger's services, and the proxy settles through the ledger's SQL.
"""
