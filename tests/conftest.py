"""The named world of the tests: alice (a customer with credits), bob (another
customer) and ops (staff)."""

from __future__ import annotations

import itertools

import pytest
from django.core.cache import cache
from django.db.backends.signals import connection_created
from django.dispatch import receiver

from accounts.services import user_signup
from agipower.celery import app as celery_app
from billing.ledger.grants import credit_grant
from billing.models import LotSource
from money import usd_to_nanos

PASSWORD = "correct horse battery staple"
_keys = itertools.count()


def new_key(prefix: str = "test") -> str:
    return f"{prefix}-{next(_keys)}"


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
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def alice(db):
    """A customer with $50 of gift credits."""
    user = user_signup(email="alice@example.com", password=PASSWORD, full_name="Alice")
    credit_grant(
        account=user.account,
        source=LotSource.GIFT,
        amount_nanos=usd_to_nanos("50"),
        reason="welcome gift",
        actor=None,
        idempotency_key=new_key("gift"),
    )
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
