"""The OpenAPI schema of /api/v1, completed after drf-spectacular builds it.

drf-spectacular documents what the views answer when all goes well; the
errors they answer come from one place (agipower.api_errors) and are added
here to every operation, so that clients, and the property test that checks
every answer against the schema (tests/api/test_schema_properties.py), know
their shapes:

- 400: the fields that were refused, each with its messages
  (``{"limit": ["..."]}``), or a refusal of the services
  (``{"error": {"code", "message"}}``), or ``{"detail"}`` for a body that is
  not JSON;
- 401, 403, 404: ``{"detail"}`` (404 may also be a refusal of the services: an
  unknown saved card);
- the payment operations also answer 402 (a payment declined), 409 (an
  idempotency conflict) and 503 when payments are not configured on the server.

Paths are written as DESIGN.md names them, without the trailing slash that
is accepted too.
"""

from __future__ import annotations

PAYMENT_PATHS = (
    "/api/v1/payment-methods",
    "/api/v1/top-ups",
    "/api/v1/auto-top-up",
    "/api/v1/gift-cards",
)

SCHEMAS = {
    "Detail": {
        "type": "object",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    },
    "ServiceError": {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                },
                "required": ["code", "message"],
            }
        },
        "required": ["error"],
    },
    "FieldErrors": {
        "type": "object",
        "description": "Each refused field (or non_field_errors) with its messages",
        "additionalProperties": {
            "oneOf": [
                {"type": "array", "items": {"type": "string"}},
                {"type": "object"},
            ]
        },
    },
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(description: str, *names: str) -> dict:
    schema = _ref(names[0]) if len(names) == 1 else {"anyOf": [_ref(n) for n in names]}
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }


ERRORS = {
    "400": _answer(
        "Refused input: each field with its messages, or the services' refusal",
        "FieldErrors",
        "ServiceError",
        "Detail",
    ),
    "401": _answer("No credential, or an invalid management key", "Detail"),
    "403": _answer("Not allowed", "Detail"),
    "404": _answer("Not found", "Detail", "ServiceError"),
}
PAYMENT_ERRORS = {
    "402": _answer("The payment was declined", "ServiceError"),
    "409": _answer("An idempotency key reused for another request", "ServiceError"),
    "503": _answer("Payments are not configured on this server", "ServiceError"),
}


def errors_documented(result: dict, generator, request, public) -> dict:
    """drf-spectacular's postprocessing hook (settings.SPECTACULAR_SETTINGS)."""
    result.setdefault("components", {}).setdefault("schemas", {}).update(SCHEMAS)
    paths = {}
    for path, item in result.get("paths", {}).items():
        if path.startswith("/api/v1/"):
            for operation in item.values():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                errors = dict(ERRORS)
                if path.startswith(PAYMENT_PATHS):
                    errors.update(PAYMENT_ERRORS)
                for status, answer in errors.items():
                    operation["responses"].setdefault(status, answer)
            path = path.rstrip("/")
        paths[path] = item
    result["paths"] = paths
    return result
