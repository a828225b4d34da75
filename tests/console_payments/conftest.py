"""The console's payment pages: views, and Chromium against localstripe."""

from __future__ import annotations

import pytest

from tests.stripe.fixtures import *  # noqa: F403  (the Stripe fixtures)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Signing customers up would otherwise spend the tests hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
