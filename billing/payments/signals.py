"""What payments tell the programs above them (referrals and the like).

Sent inside the transaction that moved the money, with the top-up's row
locked, so a receiver's writes commit or roll back with it. A receiver must be
idempotent (key its journal entries on the top-up or the refund's id): the
same refund may be heard of again after a failure. Receivers call one service;
they hold no rules of their own.
"""

from __future__ import annotations

from django.dispatch import Signal

# A top-up for credits was credited, once: ``topup`` (billing.models.TopUp).
topup_credited = Signal()

# Money of a credited top-up went back to the payer, once per Stripe refund or
# dispute id: ``topup``, ``kind`` ("refund" or "dispute"), ``reference`` (the
# Stripe refund or dispute id) and ``amount_nanos`` (what went back).
topup_reversed = Signal()
