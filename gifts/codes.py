"""Gift and promotion code strings: generation, reading what a person typed,
the check character, and the digest that is all we store.

A code reads ``AGIP-XXXX-XXXX-XXXX``: 11 characters of ``secrets`` randomness
(55 bits) and a check character, in Crockford's base32 alphabet, which leaves
out I, L, O and U so that nothing is read as something else. Typed input is
forgiving the way Crockford's decoding is: any case, spaces or dashes anywhere,
the prefix optional, I and L read as 1 and O as 0.

The check character (Luhn mod 32) catches every single mistyped character and
almost every swap of two neighbours, so a typo is told from a wrong code
without asking the database, and is not counted as a failed attempt.

55 bits are plenty against guessing: a well-formed guess has a 1 in 2**55
chance, and an account gets 5 wrong codes per 15 minutes.

Only an HMAC-SHA256 digest of the code (keyed by APIKEY_SECRET, which is
SECRET_KEY unless set, with a label of its own) is stored, and its last four
characters for people to tell codes apart.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.conf import settings

from gifts.errors import CodeMalformed

PREFIX = "AGIP"
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RANDOM_LENGTH = 11
_LOOK_ALIKES = str.maketrans({"I": "1", "L": "1", "O": "0"})
_DIGEST_LABEL = b"agipower gift code v1\x00"


def _check_character(body: str) -> str:
    """Luhn mod N over the alphabet: doubling every second symbol from the
    right, as the card-number check does in base 10."""
    base = len(ALPHABET)
    total = 0
    double = True
    for char in reversed(body):
        value = ALPHABET.index(char) * (2 if double else 1)
        total += value // base + value % base
        double = not double
    return ALPHABET[-total % base]


def _shown(symbols: str) -> str:
    return "-".join([PREFIX, symbols[0:4], symbols[4:8], symbols[8:12]])


def code_generate() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return _shown(body + _check_character(body))


def code_read(text: object) -> str:
    """The code a person typed, in its one written form; CodeMalformed names
    what is wrong with it (nothing was looked up)."""
    if not isinstance(text, str) or not text.strip():
        raise CodeMalformed("code: enter a code like AGIP-XXXX-XXXX-XXXX")
    symbols = "".join(text.upper().split()).replace("-", "")
    if symbols.startswith(PREFIX):
        symbols = symbols[len(PREFIX) :]
    symbols = symbols.translate(_LOOK_ALIKES)
    if len(symbols) != RANDOM_LENGTH + 1 or any(c not in ALPHABET for c in symbols):
        raise CodeMalformed(
            "code: a code is AGIP- and 12 letters and digits, like "
            "AGIP-XXXX-XXXX-XXXX; check what you typed"
        )
    if _check_character(symbols[:-1]) != symbols[-1]:
        raise CodeMalformed(
            "code: this code has a typo (its check character does not match); "
            "check each character"
        )
    return _shown(symbols)


def code_digest(code: str) -> str:
    """The digest of a code in its written form (``code_read``'s answer)."""
    return hmac.new(
        settings.APIKEY_SECRET.encode(), _DIGEST_LABEL + code.encode(), hashlib.sha256
    ).hexdigest()


def code_last4(code: str) -> str:
    return code[-4:]
