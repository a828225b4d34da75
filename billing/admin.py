"""Operators' admin of billing, in its two parts: the ledger's
(``billing.ledger.admin``) and payments' (``billing.payments.admin``). Django's
autodiscovery imports this module; importing both registers them."""

from billing.ledger import admin as ledger_admin  # noqa: F401
from billing.payments import admin as payments_admin  # noqa: F401
