"""The fixtures every folder shares: the named world (alice, a customer with
credits; bob, another customer; ops, staff), a private cache, eager tasks and
quick password hashes in every test, the test database's setup and release, the
fake upstream with a catalog priced for it, and localstripe.

The helpers these fixtures call, and that tests import, are in tests/support;
a test module never imports a conftest.py."""

from __future__ import annotations

import pytest
import stripe
from django.core.cache import cache
from django.db.backends.signals import connection_created
from django.dispatch import receiver

from accounts.services import user_signup
from agipower.celery import app as celery_app
from billing.payments.localstripe import (
    PUBLISHABLE_KEY,
    SECRET_KEY,
    WEBHOOK_PATH,
    WEBHOOK_SECRET,
    LocalStripe,
)
from money import usd_to_nanos
from proxy.models import CatalogModel, ModelPrice, Provider
from tests.support.payments import (
    VISA,
    StripeWebhooks,
    browser_card_confirm,
    localstripe_server,
)
from tests.support.proxy import PRICES
from tests.support.world import PASSWORD, grant
from tests.upstream.process import UpstreamProcess


@receiver(connection_created, dispatch_uid="tests.flush_may_truncate")
def _flush_may_truncate(sender, connection, **kwargs):
    # Tests that commit are followed by Django's flush, which empties every
    # table with TRUNCATE; the journal's trigger refuses TRUNCATE except in a
    # session that allows it (billing/sql/ledger_v1.sql).
    with connection.cursor() as cursor:
        cursor.execute("SET agipower.allow_truncate = on")


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    # dj-stripe's own migrations take ~30 s: the test database gets its tables
    # from one quick migration made from its models (see that module).
    from django.conf import settings

    settings.MIGRATION_MODULES = {
        **getattr(settings, "MIGRATION_MODULES", {}),
        "djstripe": "tests.stripe.djstripe_migrations",
    }


@pytest.fixture(autouse=True)
def _isolated(settings):
    # A private cache per test process, not the files shared with development.
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    }
    # Tasks run where they are queued. Celery read Django's settings once, when
    # its app was first used, so its own configuration is what counts.
    settings.CELERY_TASK_ALWAYS_EAGER = True
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # PBKDF2 at full strength costs ~0.3 s a hash, and the named world signs up
    # in most tests: no test here is about the hash's strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def alice(db):
    """A customer with $50 of gift credits."""
    user = user_signup(email="alice@example.com", password=PASSWORD, full_name="Alice")
    grant(user, "50", reason="welcome gift")
    return user


@pytest.fixture
def bob(db):
    """Another customer, with nothing."""
    return user_signup(email="bob@example.com", password=PASSWORD, full_name="Bob")


@pytest.fixture
def ops(db):
    from accounts.models import User

    return User.objects.create_superuser(email="ops@example.com", password=PASSWORD)


@pytest.fixture(scope="session", autouse=True)
def _test_database_released(django_db_setup, django_db_blocker):
    """At the end, close what threads and platform processes left connected to
    the test database, so that it can be dropped."""
    yield
    from django.db import connections
    from django.db.backends.base.creation import TEST_DATABASE_PREFIX

    name = connections["default"].settings_dict["NAME"]
    if not name.startswith(TEST_DATABASE_PREFIX):
        return  # no test used a database, so none was made: leave the real one be
    with django_db_blocker.unblock(), connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


# --- the fake upstream and a catalog priced for it (tests/support/proxy.py) ---


@pytest.fixture(scope="session")
def upstream():
    with UpstreamProcess(api_key="sk-upstream-test") as process:
        yield process


@pytest.fixture
def catalog(transactional_db, upstream):
    provider = Provider.objects.create(
        name="fake",
        base_url=upstream.base_url,
        api_key_env="FAKE_UPSTREAM_KEY",
        read_timeout_seconds=5,
    )
    chat = CatalogModel.objects.create(
        id="fake/gpt",
        provider=provider,
        upstream="gpt-upstream",
        context_length=200_000,
        max_output_tokens=8_192,
    )
    embed = CatalogModel.objects.create(
        id="fake/embed",
        provider=provider,
        upstream="embed-upstream",
        kind="embedding",
        context_length=8_192,
        max_output_tokens=0,
    )
    for model in (chat, embed):
        ModelPrice.objects.create(
            model=model,
            input_nanos=usd_to_nanos(PRICES["input"]),
            cached_input_nanos=usd_to_nanos(PRICES["cached_input"]),
            cache_write_nanos=usd_to_nanos(PRICES["cache_write"]),
            output_nanos=usd_to_nanos(PRICES["output"]),
        )
    return {"chat": chat, "embed": embed}


# --- localstripe (tests/support/payments.py) -----------------------------------


@pytest.fixture(scope="session")
def localstripe() -> LocalStripe:
    """One localstripe server per test process, shared by every folder;
    ``.api_base``, ``.js_url``, ``.flush()``..."""
    return localstripe_server()


@pytest.fixture
def stripe_settings(settings, localstripe):
    """Stripe keys shaped like real test keys, and ``STRIPE_API_BASE`` and
    ``STRIPE_JS_URL`` pointed at localstripe, for one test."""
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_PUBLISHABLE_KEY = PUBLISHABLE_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = localstripe.api_base
    settings.STRIPE_JS_URL = localstripe.js_url
    settings.STRIPE_LIVE_MODE = False
    api_base = stripe.api_base
    # For the tests' own calls too (the gateway sets it on every call).
    stripe.api_base = localstripe.api_base
    yield settings
    # The gateway sets it on every call; leave no localstripe address behind.
    stripe.api_base = api_base


@pytest.fixture
def stripe_webhooks(live_server, stripe_settings, localstripe):
    """localstripe posts its events to ``live_server.url + "/stripe/webhook/"``
    signed with the test secret (hence a transactional database); afterwards
    the endpoint is forgotten, posts in flight are waited for and localstripe's
    data is flushed. Its ``wait_for`` polls for what a webhook should have
    done."""
    url = live_server.url + WEBHOOK_PATH
    webhook_id = localstripe.register_webhook(url, WEBHOOK_SECRET)
    yield StripeWebhooks(url=url, secret=WEBHOOK_SECRET, localstripe=localstripe)
    localstripe.unregister_webhook(webhook_id)
    # Before the test database is emptied: no post may still be writing.
    localstripe.deliveries_wait()
    localstripe.flush()


@pytest.fixture
def card_save(localstripe, stripe_settings):
    """Save a card on an account the way the console does: a SetupIntent,
    confirmed by Stripe.js, then the card list."""
    from billing.payments import stripe_gateway as gateway

    def save(account, number: str = VISA):
        intent = gateway.setup_intent_create(account=account)
        confirmed = browser_card_confirm(localstripe, intent, number)
        cards = {card.id: card for card in gateway.cards_list(account=account)}
        return cards[confirmed["payment_method"]]

    return save
