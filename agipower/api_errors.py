"""One place that turns domain errors into HTTP answers for /api/v1."""

from __future__ import annotations

from rest_framework import status
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apikeys.authentication import CHALLENGE
from apikeys.errors import ApiKeyError
from billing.errors import (
    BillingError,
    IdempotencyConflict,
    InsufficientCredits,
    PaymentFailed,
    PaymentsNotConfigured,
    UnknownPaymentMethod,
)

_STATUS = {
    InsufficientCredits: status.HTTP_402_PAYMENT_REQUIRED,
    IdempotencyConflict: status.HTTP_409_CONFLICT,
    UnknownPaymentMethod: status.HTTP_404_NOT_FOUND,
    PaymentsNotConfigured: status.HTTP_503_SERVICE_UNAVAILABLE,
    PaymentFailed: status.HTTP_402_PAYMENT_REQUIRED,
}


def exception_handler(exc, context):
    if isinstance(exc, BillingError):
        code = next(
            (value for cls, value in _STATUS.items() if isinstance(exc, cls)),
            status.HTTP_400_BAD_REQUEST,
        )
        return Response({"error": {"code": exc.code, "message": str(exc)}}, status=code)
    if isinstance(exc, ApiKeyError):
        return Response(
            {"error": {"code": exc.code, "message": str(exc)}},
            status=status.HTTP_400_BAD_REQUEST,
        )
    response = drf_exception_handler(exc, context)
    if isinstance(exc, NotAuthenticated | AuthenticationFailed):
        # DRF asks only the first authenticator (the session, which has no
        # challenge) and so would answer 403. No or a refused credential is a
        # 401 that names the scheme to use: a management key.
        response.status_code = status.HTTP_401_UNAUTHORIZED
        response["WWW-Authenticate"] = CHALLENGE
    return response
