"""Key strings: generation, checksum, digest and display prefix.

A key is ``sk-ap-v1-`` (PAYG) or ``sk-mg-v1-`` (management), then 32 base62
characters of ``secrets`` randomness (190 bits), then a 6-character base62
CRC32 of everything before it, so a secret scanner can tell a real key from
look-alike text without asking us. Only an HMAC-SHA256 digest keyed by
APIKEY_SECRET is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import zlib

from django.conf import settings

PAYG_PREFIX = "sk-ap-v1-"
MANAGEMENT_PREFIX = "sk-mg-v1-"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_LENGTH = 32
CHECKSUM_LENGTH = 6


def _base62(number: int, length: int) -> str:
    digits = []
    for _ in range(length):
        number, digit = divmod(number, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), CHECKSUM_LENGTH)


def key_generate(prefix: str) -> str:
    body = prefix + "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return body + _checksum(body)


def key_is_well_formed(key: str, prefix: str) -> bool:
    """The shape and checksum are right (says nothing about whether it exists)."""
    if not key.startswith(prefix):
        return False
    if len(key) != len(prefix) + RANDOM_LENGTH + CHECKSUM_LENGTH:
        return False
    body, checksum = key[:-CHECKSUM_LENGTH], key[-CHECKSUM_LENGTH:]
    return hmac.compare_digest(_checksum(body), checksum)


def key_digest(key: str) -> str:
    return hmac.new(
        settings.APIKEY_SECRET.encode(), key.encode(), hashlib.sha256
    ).hexdigest()


def key_display_prefix(key: str) -> str:
    """What the list shows: ``sk-ap-v1-AbC…wxyz``."""
    head = len(PAYG_PREFIX) + 3
    return f"{key[:head]}…{key[-4:]}"
