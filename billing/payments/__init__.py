"""Payments with Stripe: top-ups credited exactly once, refunds and disputes,
and auto top-up.

- ``rules``: what a top-up may be (amounts, bonus, return address);
- ``topups``: starting a top-up, and crediting it once from Stripe's word;
- ``invoicing``: a credited top-up's invoice, its lines composed here, once;
- ``refunds``: refunds and disputes, which take its credits back;
- ``autotopup``: auto top-up's settings, cap and state;
- ``autocharge``: auto top-up's charge, one per crossing of the threshold;
- ``events``: the Stripe webhook events that reach these;
- ``notices``: emails to customers and operators;
- ``selectors``: reads, such as the invoices of a page of the history.

Stripe itself is reached only through ``billing.payments.stripe_gateway``.
"""
