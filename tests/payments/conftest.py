from tests.proxy.conftest import catalog, upstream  # noqa: F401 - fixtures
from tests.stripe.fixtures import *  # noqa: F403  (the Stripe fixtures)
