from __future__ import annotations

import pytest

from helpers import make_file
from stackcoder.data import fields as F
from stackcoder.data.filters import AlphaFilter
from stackcoder.data.filters.alpha import count_chars


def reason(doc, **kwargs):
    (out,) = AlphaFilter(**kwargs).run(iter([doc]))
    if F.REMOVED_STAGE in out.metadata:
        assert out.metadata[F.REMOVED_STAGE] == "alpha"
    return out.metadata.get(F.REMOVED_REASON)


@pytest.mark.parametrize(
    "text",
    ["", "abc", "a1 b2\n", "été ß 𝔘 ٣ 中文 123 \t", "\x00\x7f\x80\xff", "Ǆ·ǅ ⅷ ²", "x" * 1000 + "é" * 3],
)
def test_count_matches_str_methods(text):
    assert count_chars(text) == sum(map(str.isalpha, text))
    assert count_chars(text, alnum=True) == sum(map(str.isalnum, text))


def test_fraction_over_all_characters_boundary():
    # 25 letters in 100 characters (whitespace and newlines count): exactly 25%, kept
    text = "a" * 25 + " " * 70 + "\n" * 5
    assert reason(make_file(text, language="Python")) is None
    assert reason(make_file("a" * 24 + " " * 71 + "\n" * 5, language="Python")) == "low_alpha"


def test_non_ascii_letters_count():
    assert reason(make_file("中文" * 10 + "1" * 60, language="Text")) is None
    assert reason(make_file("中文" * 10 + "1" * 61, language="Text")) == "low_alpha"


def test_alnum_languages():
    # m68k listing: mostly hex digits, few letters
    asm = "\tdc.b $00,$01,$02,$03\n" * 5 + "0102030405060708090a0b0c0d0e0f10\n" * 5
    assert count_chars(asm) < 0.25 * len(asm) <= count_chars(asm, alnum=True)
    assert reason(make_file(asm, "x.asm", language="Motorola 68K Assembly")) is None
    assert reason(make_file(asm, "x.wat", language="WebAssembly")) is None
    # the same text in another language needs letters
    assert reason(make_file(asm, "x.s", language="Unix Assembly")) == "low_alpha"
    # digits do not help outside the list
    assert reason(make_file("1234567890" * 10, language="CSV")) == "low_alpha"


def test_empty_file_kept():
    assert reason(make_file("", language="Python")) is None
