"""Property test of the management API: every operation of /api/schema/,
called in-process through the WSGI application with a management key, never
answers a 5xx and always answers what the schema documents for its status.

Deterministic (derandomized) and bounded (a few dozen examples per operation),
so it runs inside the suite. Payments are not configured here: those
operations answer their documented 503."""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from accounts.services import billing_profile_save
from agipower.wsgi import application
from apikeys.models import ApiKey, KeyKind, KeyStatus
from apikeys.services import key_create


def not_a_server_error_but_payments_off(ctx, response, case):
    """``not_a_server_error``, but for the documented 503 of a payment operation
    on a server without Stripe keys (as here): that is its answer."""
    if (
        response.status_code == 503
        and not django_settings.STRIPE_SECRET_KEY
        and case.operation.responses.find_by_status_code(503) is not None
    ):
        return None
    return not_a_server_error(ctx, response, case)


CALLS: Counter[str] = Counter()
PHASES: Counter[str] = Counter()

CHECKS = [not_a_server_error_but_payments_off, response_schema_conformance]


# Read from the app at collection: drf-spectacular builds it without the database.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@pytest.fixture
def in_transaction(db):
    """Calls of the WSGI application run in the test's transaction: like Django's
    test client, it must not close the connection after each request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def authorization(alice):
    """The Authorization header of a working management key of alice's. The
    operations may disable or delete any key, their own included: then the next
    call gets a new one."""
    current: dict[str, str | int] = {}

    def header() -> dict[str, str]:
        key_id = current.get("id")
        if not ApiKey.objects.filter(
            pk=key_id, deleted_at=None, status=KeyStatus.ENABLED
        ).exists():
            created = key_create(
                account=alice.account, name="schemathesis", kind=KeyKind.MANAGEMENT
            )
            current.update(id=created.api_key.pk, secret=created.secret)
        return {"Authorization": f"Bearer {current['secret']}"}

    return header


@schema.parametrize()
@settings(
    max_examples=15,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_what_its_schema_says(
    case, in_transaction, authorization
):
    CALLS[case.operation.label] += 1
    PHASES[getattr(getattr(case.meta, "phase", None), "name", "?")] += 1
    case.call_and_validate(headers=authorization(), checks=CHECKS)


@pytest.fixture(scope="module", autouse=True)
def _figures():
    yield
    print(
        f"\nschemathesis: {len(CALLS)} operations, {sum(CALLS.values())} cases; "
        f"by phase {dict(PHASES)}; by operation {dict(CALLS)}"
    )


@pytest.fixture
def billing_profile(alice):
    """Asked for before a top-up: with it, top-ups reach Stripe."""
    billing_profile_save(
        account=alice.account,
        name="Alice Example",
        country="US",
        address_line1="1 Main Street",
        city="Springfield",
    )


payments = schema.include(path_regex="payment-methods|top-ups|auto-top-up")


@payments.parametrize()
@settings(
    max_examples=8,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_payment_operations_with_stripe_answer_what_their_schema_says(
    case, in_transaction, authorization, stripe_settings, billing_profile
):
    CALLS["stripe " + case.operation.label] += 1
    case.call_and_validate(headers=authorization(), checks=CHECKS)
