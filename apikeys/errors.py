from __future__ import annotations


class ApiKeyError(Exception):
    """A refused change to an API key; nothing was written."""

    code = "invalid_api_key_request"
