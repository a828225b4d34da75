"""The errors of ``/v1``, each with its name, and their OpenAI shape
``{"error": {"message", "type", "code", "param"}}``.

Raised anywhere on the hot path and answered in one place
(``ProxyApp.handle``): before a stream began as a JSON answer with its status,
after it as the stream's last event (``sse_error``).
"""

from __future__ import annotations

import json

from money import format_usd


class ApiError(Exception):
    """An OpenAI-shaped error answer."""

    def __init__(self, status: int, message: str, *, type: str, code: str, param=None):
        super().__init__(message)
        self.status = status
        self.type = type
        self.code = code
        self.param = param

    def body(self) -> bytes:
        error = {"message": str(self), "type": self.type, "code": self.code}
        error["param"] = self.param
        return json.dumps({"error": error}).encode()


class BillingUnavailable(ApiError):
    """The request could not be billed, so its answer is not delivered."""

    MESSAGE = "Billing is unavailable right now; the request was not charged"

    def __init__(self):
        super().__init__(
            503, self.MESSAGE, type="server_error", code="billing_unavailable"
        )


class ClientGone(Exception):
    """The client went away before its request was read."""


class InvalidRequest(ValueError):
    """A request that does not have OpenAI's shape: ``param`` is the path of the
    offending value (``proxy.validation``); answered as ``bad_request``."""

    def __init__(self, message: str, param: str):
        super().__init__(message)
        self.param = param


def missing_api_key() -> ApiError:
    return ApiError(
        401,
        "Missing API key: send it as 'Authorization: Bearer sk-ap-v1-…'",
        type="authentication_error",
        code="missing_api_key",
    )


def invalid_api_key() -> ApiError:
    return ApiError(
        401, "Invalid API key", type="authentication_error", code="invalid_api_key"
    )


def api_key_disabled() -> ApiError:
    return ApiError(
        403,
        "This API key is disabled",
        type="permission_error",
        code="api_key_disabled",
    )


def account_disabled() -> ApiError:
    return ApiError(
        403,
        "The account this API key belongs to is deactivated",
        type="permission_error",
        code="account_disabled",
    )


def unknown_url(method: str, path: str) -> ApiError:
    return ApiError(
        404,
        f"Unknown endpoint {method} {path}",
        type="invalid_request_error",
        code="unknown_url",
    )


def method_not_allowed(path: str) -> ApiError:
    return ApiError(
        405,
        f"{path} takes POST",
        type="invalid_request_error",
        code="method_not_allowed",
    )


def not_admitted(
    refusal: str,
    *,
    available: int | None,
    amount: int,
    prompt_bound: int,
    output_allowance: int,
    affordable: int | None,
) -> ApiError:
    """A 402: the hold was refused (``refusal``: ``key_limit_reached`` or
    ``insufficient_credits``). ``affordable``: the output tokens the balance
    pays for, said to a chat request."""
    if refusal == "key_limit_reached":
        message = (
            f"This API key's credit limit is reached: {format_usd(available, 6)} "
            f"of it is left and this request may cost up to "
            f"{format_usd(amount, 6)}."
        )
    else:
        message = (
            f"Insufficient credits: {format_usd(available or 0, 6)} available, and "
            f"this request may cost up to {format_usd(amount, 6)} "
            f"({prompt_bound} prompt tokens at most, {output_allowance} output "
            f"tokens allowed). Top up, or lower max_tokens."
        )
    if affordable is not None:
        message += f" The balance affords about {affordable} output tokens."
    return ApiError(402, message, type="insufficient_credits", code=refusal)


def bad_request(message: str, param: str | None = None) -> ApiError:
    return ApiError(
        400, message, type="invalid_request_error", code="invalid_request", param=param
    )


def model_not_found(message: str) -> ApiError:
    return ApiError(
        404,
        message,
        type="invalid_request_error",
        code="model_not_found",
        param="model",
    )


def upstream_timeout() -> ApiError:
    return ApiError(
        504,
        "The upstream provider timed out",
        type="upstream_error",
        code="upstream_timeout",
    )


def upstream_error(message: str, *, code: str = "upstream_error") -> ApiError:
    """A 502: upstream failed, or answered something unusable."""
    return ApiError(502, message, type="upstream_error", code=code)


def internal_error() -> ApiError:
    """A fault of ours."""
    return ApiError(
        502, "The request failed", type="server_error", code="internal_error"
    )


def sse_error(
    message: str, *, type: str = "server_error", code: str = "internal_error"
) -> bytes:
    """An error as the last event of a stream that has already begun."""
    error = {"message": message, "type": type, "code": code, "param": None}
    return b"data: " + json.dumps({"error": error}).encode() + b"\n\n"
