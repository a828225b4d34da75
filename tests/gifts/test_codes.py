"""Code strings: their shape, the check character that tells a typo from a
wrong code without a lookup, and forgiving reading of what people type."""

from __future__ import annotations

import re

import pytest

from gifts.codes import ALPHABET, code_digest, code_generate, code_read
from gifts.errors import CodeMalformed


def test_a_code_is_agip_and_three_groups_of_unambiguous_characters():
    codes = {code_generate() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert re.fullmatch(
            r"AGIP-[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){2}", code
        )
        assert code_read(code) == code


def test_every_single_mistyped_character_is_caught_as_a_typo():
    code = code_generate()
    symbols = code.replace("AGIP-", "").replace("-", "")
    for position in range(len(symbols)):
        for other in ALPHABET:
            if other == symbols[position]:
                continue
            typo = symbols[:position] + other + symbols[position + 1 :]
            with pytest.raises(CodeMalformed, match="typo"):
                code_read(typo)


def test_what_people_type_is_read_forgivingly():
    code = code_generate()
    symbols = code.replace("AGIP-", "").replace("-", "")
    assert code_read(f"  {symbols.lower()} ") == code
    assert code_read(code.lower().replace("-", " ")) == code
    if "1" in symbols:
        assert code_read(symbols.replace("1", "l")) == code
    if "0" in symbols:
        assert code_read(symbols.replace("0", "O")) == code


@pytest.mark.parametrize("text", ["", "   ", "AGIP-1234", "AGIP-UUUU-UUUU-UUUU", 42])
def test_what_is_no_code_at_all_is_refused_naming_the_field(text):
    with pytest.raises(CodeMalformed, match="^code: "):
        code_read(text)


def test_only_a_keyed_digest_is_kept():
    code = code_generate()
    digest = code_digest(code)
    assert len(digest) == 64 and code not in digest
    assert digest == code_digest(code_read(code.lower()))
