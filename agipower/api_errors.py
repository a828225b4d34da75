"""One place that turns domain errors into HTTP answers for /api/v1."""

from __future__ import annotations

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from billing.errors import BillingError, IdempotencyConflict, InsufficientCredits

_STATUS = {
    InsufficientCredits: status.HTTP_402_PAYMENT_REQUIRED,
    IdempotencyConflict: status.HTTP_409_CONFLICT,
}


def exception_handler(exc, context):
    if isinstance(exc, BillingError):
        code = next(
            (value for cls, value in _STATUS.items() if isinstance(exc, cls)),
            status.HTTP_400_BAD_REQUEST,
        )
        return Response({"error": {"code": exc.code, "message": str(exc)}}, status=code)
    return drf_exception_handler(exc, context)
