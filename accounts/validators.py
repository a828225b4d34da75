"""Plain text: what people type, without the invisible characters that change
how it is shown.

A right-to-left override (U+202E) in a billing profile printed its address
reversed on an invoice PDF; a NUL cannot even be stored. So names, addresses,
key names and operators' reasons refuse control characters (Unicode Cc),
format characters (Cf: the bidi embeddings, overrides and isolates
U+202A-U+202E and U+2066-U+2069, the marks U+200E/U+200F, U+FEFF, zero-width
spaces), lone surrogates (Cs) and line or paragraph separators. Two format
characters stay allowed because real names need them: the zero-width
non-joiner and joiner (U+200C, U+200D) of Persian and Indic scripts and of emoji
sequences. A multi-line field also takes line breaks and tabs.

One validator for model fields, forms and serializers alike (DRF runs
Django's validators too).
"""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_NEEDED_FORMAT_CHARACTERS = frozenset({"\u200c", "\u200d"})
_LINE_BREAKS = frozenset({"\n", "\r", "\t"})


def unsafe_character(value: str, *, multiline: bool = False) -> str | None:
    """The first character of ``value`` that plain text refuses, or None."""
    for char in value:
        if unicodedata.category(char) not in _REFUSED_CATEGORIES:
            continue
        if char in _NEEDED_FORMAT_CHARACTERS or (multiline and char in _LINE_BREAKS):
            continue
        return char
    return None


def character_name(char: str) -> str:
    """ "U+202E RIGHT-TO-LEFT OVERRIDE", "U+0000" """
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X} {name}".rstrip()


def unsafe_character_message(char: str) -> str:
    return (
        f"Contains {character_name(char)}, an invisible control character; remove it."
    )


@deconstructible
class PlainTextValidator:
    code = "control_character"

    def __init__(self, *, multiline: bool = False):
        self.multiline = multiline

    def __call__(self, value) -> None:
        if not isinstance(value, str):
            return
        char = unsafe_character(value, multiline=self.multiline)
        if char is not None:
            raise ValidationError(unsafe_character_message(char), code=self.code)

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, PlainTextValidator) and other.multiline == self.multiline
        )

    def __hash__(self) -> int:
        return hash((PlainTextValidator, self.multiline))


plain_text = PlainTextValidator()
plain_text_multiline = PlainTextValidator(multiline=True)
