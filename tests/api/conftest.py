from tests.stripe.fixtures import *  # noqa: F403  (the Stripe fixtures)
