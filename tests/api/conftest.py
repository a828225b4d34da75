import pytest

from tests.stripe.fixtures import *  # noqa: F403  (the Stripe fixtures)


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # alice and bob sign up in most tests here: PBKDF2 would spend the time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
