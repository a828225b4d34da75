"""The tests' one fixture layer: plain helpers, named by what they are.

Test modules import helpers from here, never from a ``conftest.py`` or from
another test module (tests/test_fixture_layer.py checks this). Fixtures stay in
``conftest.py`` files and call these helpers; a fixture that more than one
folder uses lives in the root ``tests/conftest.py``.

- ``world``: the named world's password, fresh customers, unique keys, and the
  one way to give credits (``grant``).
- ``ledger``: dollars in nanos, reads of wallets, lots and movements, counts of
  every ledger table, and the whole-ledger check.
- ``threads``: jobs run at once on threads with their own connections.
- ``keys``: API keys and request logs in one line, API clients with a bearer.
- ``catalog``: the shipped catalog, a small one to bend, a snapshot of its rows.
- ``proxy``: the test model's prices, the hold the proxy places, waiting for
  leases to come back.
- ``platform``: the platform as a real process against the test database.
- ``payments``: localstripe, test cards, Stripe.js's card confirmation, and a
  customer's billing profile.
- ``invoices``: top-ups paid, credited and invoiced; PDFs as text and pictures.
- ``browser``: Debian's Chromium for Playwright, and a thread to drive it in.
- ``console_browser``: a signed-in console page that records what the policy
  refuses and what the page logs; how much a chart's canvas drew; overflow.
- ``pages``: what a page shows, by its data-testid attributes.

The fake upstream stays in ``tests/upstream`` with its own tests: it is a
program of its own (``python -m tests.upstream.server``) that the benchmark
runs too.

factory_boy is not used: customers, keys and credits are made through the
services production uses (``user_signup`` opens the account and its wallet,
``key_create`` the digests, ``credit_grant`` the journal through the ledger's
SQL), so a factory would either bypass those paths or wrap one call; the rows
written straight (request logs, paid top-ups) are one dict of defaults each.
"""
