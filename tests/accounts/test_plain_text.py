"""accounts.validators: names, addresses and reasons without invisible
characters that change how text is shown (a U+202E printed an address reversed
on an invoice)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from accounts.models import BillingProfile, User
from accounts.validators import plain_text, plain_text_multiline, unsafe_character

REFUSED = [
    *[chr(c) for c in range(0x202A, 0x202F)],  # bidi embeddings and overrides
    *[chr(c) for c in range(0x2066, 0x206A)],  # bidi isolates
    "\u200e",
    "\u200f",
    "\u061c",  # ARABIC LETTER MARK
    "\ufeff",
    "\u200b",
    "\u2060",
    "\u00ad",  # SOFT HYPHEN
    "\x00",
    "\x07",
    "\x7f",
    "\x85",
    "\ud800",  # a lone surrogate (JSON's "\ud800" decodes to one)
    "\u2028",
    "\u2029",
]


@pytest.mark.parametrize("char", REFUSED, ids=lambda c: f"U+{ord(c):04X}")
def test_hidden_characters_are_refused_even_in_multi_line_text(char):
    assert unsafe_character(f"a{char}b") == char
    assert unsafe_character(f"a{char}b", multiline=True) == char
    with pytest.raises(ValidationError, match=f"U\\+{ord(char):04X}"):
        plain_text(f"a{char}b")


@pytest.mark.parametrize(
    "text",
    [
        "Zoë O'Brien-Łukasz",
        "\u05e9\u05dc\u05d5\u05dd",  # Hebrew
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian, with a ZWNJ
        "\u0915\u094d\u200d\u0937",  # Devanagari, with a ZWJ
        "\U0001f469\u200d\U0001f4bb",  # an emoji sequence
        "東京都千代田区",
    ],
)
def test_text_in_any_script_is_kept(text):
    assert unsafe_character(text) is None
    plain_text(text)


def test_line_breaks_only_in_multi_line_text():
    reason = "refund:\r\n\tcustomer asked"
    plain_text_multiline(reason)
    with pytest.raises(ValidationError, match="U\\+000D"):
        plain_text(reason)


def test_the_models_validate_with_it(alice):
    profile = BillingProfile(
        account=alice.account,
        name="Alice",
        country="US",
        address_line1="1 Main St\u202e",
        city="Springfield",
    )
    with pytest.raises(ValidationError) as refused:
        profile.full_clean()
    assert set(refused.value.message_dict) == {"address_line1"}
    user = User(email="x@example.com", full_name="x\u2067y")
    with pytest.raises(ValidationError) as refused:
        user.full_clean(exclude=["password"])
    assert set(refused.value.message_dict) == {"full_name"}
