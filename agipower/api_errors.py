"""One place that turns domain errors into HTTP answers for /api/v1, and the
middleware that keeps every /api/ answer JSON, errors included."""

from __future__ import annotations

from http import HTTPStatus

from django.http import JsonResponse
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
    RefundInProgress,
    UnknownPaymentMethod,
)
from gifts.errors import GiftError
from insurance.errors import InsuranceError, ReasonInvalid

_STATUS = {
    InsufficientCredits: status.HTTP_402_PAYMENT_REQUIRED,
    IdempotencyConflict: status.HTTP_409_CONFLICT,
    UnknownPaymentMethod: status.HTTP_404_NOT_FOUND,
    RefundInProgress: status.HTTP_409_CONFLICT,
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
    if isinstance(exc, GiftError):
        response = Response(
            {"error": {"code": exc.code, "message": str(exc)}}, status=exc.status
        )
        if exc.retry_after_seconds is not None:
            response["Retry-After"] = str(exc.retry_after_seconds)
        return response
    if isinstance(exc, ReasonInvalid):
        return Response({exc.field: [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, InsuranceError):
        return Response(
            {"error": {"code": exc.code, "message": str(exc)}}, status=exc.status
        )
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


class ApiJsonErrorsMiddleware:
    """Every error under /api/ is JSON, ``{"detail": ...}``: an unknown path
    (Django's 404 page), an exception DRF did not handle (Django's 500 page,
    after Django has logged it with its traceback), a refused host or an
    oversized body. Errors DRF answered are JSON already and pass through."""

    PREFIX = "/api/"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and request.path_info.startswith(self.PREFIX)
            and not _is_json(response)
        ):
            return _json_error(response.status_code)
        return response


def _is_json(response) -> bool:
    content_type = response.get("Content-Type", "")
    return content_type.split(";")[0].strip().endswith(("/json", "+json"))


def _json_error(status_code: int) -> JsonResponse:
    try:
        phrase = HTTPStatus(status_code).phrase
    except ValueError:
        phrase = "Error"
    detail = {
        404: "Not found: no such path in this API.",
        500: "Internal server error. It has been logged.",
    }.get(status_code, phrase + ".")
    return JsonResponse({"detail": detail}, status=status_code)
