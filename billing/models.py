"""The billing app's models, in its two parts: the ledger's and payments'."""

from billing.ledger.models import *  # noqa: F403
from billing.ledger.models import __all__ as _ledger
from billing.payments.models import *  # noqa: F403
from billing.payments.models import __all__ as _payments

__all__ = [*_ledger, *_payments]
