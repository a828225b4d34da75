"""Stripe webhooks: ``POST /stripe/webhook/``.

The signature is checked first: a request that fails it writes nothing. A
verified event is then handled in one transaction, under a lock on its id:

1. an event already handled (its dj-stripe ``Event`` row exists) answers 200
   and does nothing more;
2. dj-stripe records it (``Event``, a ``WebhookEventTrigger``) and mirrors the
   object it is about;
3. the handler registered for its type runs (``@webhook_handler``).

If the handler raises, the transaction is rolled back (no trace of the event is
left) and the answer is 500, so Stripe delivers the event again. The
``Event`` row, unique per event id, is written in the same transaction as the
handler's work, so it exists exactly when the handler succeeded.

Handlers live with the code they serve (``billing.payments.events``) and are loaded
when the first event arrives::

    @webhook_handler("payment_intent.succeeded")
    def on_payment_intent_succeeded(event: dict) -> None:
        intent = event["data"]["object"]
        ...
"""

from __future__ import annotations

import importlib
import json
import logging
import time
from collections.abc import Callable

import stripe
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from djstripe.models import Event, WebhookEventTrigger

from billing.payments import stripe_gateway

logger = logging.getLogger(__name__)

# Stripe's default: a signature older than this is refused (replays), and one
# dated further ahead than this too.
SIGNATURE_TOLERANCE_SECONDS = 300
# Modules whose import registers handlers.
HANDLER_MODULES = ("billing.payments.events",)
# Headers not kept with the recorded delivery.
_PRIVATE_HEADERS = {"cookie", "authorization"}

EventHandler = Callable[[dict], None]
EVENT_HANDLERS: dict[str, EventHandler] = {}


def webhook_handler(event_type: str) -> Callable[[EventHandler], EventHandler]:
    """Register the function that handles one event type.

    It is called with the verified event as plain JSON (a dict), inside the
    webhook's transaction; it must be idempotent (the same event may arrive
    again after a failure). One handler per type.
    """

    def register(func: EventHandler) -> EventHandler:
        current = EVENT_HANDLERS.get(event_type)
        if current is not None and _name(current) != _name(func):
            raise ImproperlyConfigured(
                f"{event_type} is already handled by {_name(current)}"
            )
        EVENT_HANDLERS[event_type] = func
        return func

    return register


def _name(func: Callable) -> str:
    return f"{func.__module__}.{func.__qualname__}"


def handlers_load() -> None:
    for module in HANDLER_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # a module it imports is missing: a bug
                raise


@csrf_exempt
@login_not_required
@require_POST
@transaction.non_atomic_requests
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    if not stripe_gateway.stripe_configured():
        return _refused("payments are not configured")
    payload = request.body
    try:
        stripe.Webhook.construct_event(
            payload,
            request.headers.get("Stripe-Signature"),
            settings.STRIPE_WEBHOOK_SECRET,
            tolerance=SIGNATURE_TOLERANCE_SECONDS,
        )
        # Stripe's library refuses only signatures too old; one dated too far
        # ahead is refused as well (a clock far off, or a crafted replay).
        if _signed_at(request.headers["Stripe-Signature"]) > (
            time.time() + SIGNATURE_TOLERANCE_SECONDS
        ):
            return _refused("signature timestamp in the future")
        event = json.loads(payload)
        event_id, event_type = event["id"], event["type"]
        if not (isinstance(event_id, str) and isinstance(event_type, str)):
            raise ValueError("the event's id and type must be strings")
    except stripe.SignatureVerificationError:
        return _refused("bad signature")
    except (ValueError, KeyError, TypeError):
        return _refused("not a Stripe event")

    # The usual repeat, answered without waiting for any lock.
    if Event.objects.filter(id=event_id).exists():
        return JsonResponse({"received": True, "duplicate": True})
    try:
        duplicate = _event_handle(request, event, payload)
    except Exception:
        # Rolled back: Stripe delivers it again.
        logger.exception("stripe webhook %s (%s) failed", event_id, event_type)
        return JsonResponse({"error": "processing failed"}, status=500)
    return JsonResponse({"received": True, "duplicate": duplicate})


def _signed_at(header: str) -> int:
    """The ``t=`` of a verified ``Stripe-Signature`` header."""
    for item in header.split(","):
        key, _, value = item.partition("=")
        if key.strip() == "t":
            return int(value)
    raise ValueError("the signature has no timestamp")


def _refused(reason: str) -> HttpResponse:
    logger.warning("stripe webhook refused: %s", reason)
    return JsonResponse({"error": reason}, status=400)


@transaction.atomic
def _event_handle(request: HttpRequest, event: dict, payload: bytes) -> bool:
    """Handle a verified event once; True if it had been handled before."""
    event_id = event["id"]
    with connection.cursor() as cursor:
        # Deliveries of one event run one after another, until commit.
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [event_id]
        )
    if Event.objects.filter(id=event_id).exists():
        return True
    api_key = stripe_gateway.api_key_get()  # dj-stripe's mirror asks Stripe
    handlers_load()

    # dj-stripe's Event.process in two steps: the Event row must be written
    # even when dj-stripe cannot mirror the object (a dj-stripe gap must not
    # hold back a credit), and its own "already processed" shortcut is ours.
    recorded = Event._create_from_stripe_object(event, api_key=api_key)
    try:
        with transaction.atomic():
            recorded.invoke_webhook_handlers()
    except Exception:
        logger.exception("dj-stripe could not mirror event %s", event_id)
    WebhookEventTrigger.objects.create(
        remote_ip=request.META.get("REMOTE_ADDR") or "0.0.0.0",  # noqa: S104
        headers={
            k: v
            for k, v in request.headers.items()
            if k.lower() not in _PRIVATE_HEADERS
        },
        body=payload.decode("utf-8"),
        valid=True,
        processed=True,
        event=recorded,
        stripe_trigger_account=recorded.djstripe_owner_account,
    )

    handler = EVENT_HANDLERS.get(event["type"])
    if handler is not None:
        handler(event)
    return False
