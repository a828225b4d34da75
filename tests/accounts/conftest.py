from __future__ import annotations

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _private_cache_fast_hashes(settings):
    # The default file cache lives in var/ and is shared with any other test run
    # on this checkout; a throttle test must not see another run's counters.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "tests-accounts",
        }
    }
    # PBKDF2 at full strength costs ~0.3 s a hash; these tests hash often.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    yield
    cache.clear()
