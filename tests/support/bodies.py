"""Kept bodies in tests: the fields a settled request carries when its
account keeps bodies (as ``proxy.call.Call.log_item`` adds them), and a kept
body read back."""

from __future__ import annotations

import zlib

from proxy.call import _kept


def body_fields(request: bytes, response: bytes) -> dict:
    request_kept, request_cut = _kept(request)
    response_kept, response_cut = _kept(response)
    return {
        "body_request": request_kept,
        "body_response": response_kept,
        "body_truncated": request_cut or response_cut,
    }


def unpacked(stored) -> bytes:
    """A kept body (zlib-compressed bytea) as the bytes it was."""
    return zlib.decompress(bytes(stored))
