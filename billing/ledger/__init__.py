"""The credit ledger: wallets, lots in two pools, the append-only journal,
holds and leases, grants, expiry, claw-backs and reversals, and the nightly
reconciliation of every invariant.

The ledger never imports ``billing.payments``: payments credit and claw back
through the ledger's services, never the other way round.
"""
