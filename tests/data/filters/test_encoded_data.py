from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from helpers import make_file
from stackcoder.data import fields as F
from stackcoder.data.filters import EncodedDataFilter
from stackcoder.data.filters.encoded_data import (
    BASE64_PATTERN,
    HEX_PATTERN,
    UNICODE_PATTERN,
    Base64Runs,
    RegexSpans,
)
from stackcoder.data.recipe import load_recipe


def reason(text: str, **kwargs):
    (out,) = EncodedDataFilter(**kwargs).run(iter([make_file(text)]))
    if F.REMOVED_STAGE in out.metadata:
        assert out.metadata[F.REMOVED_STAGE] == "encoded_data"
    return out.metadata.get(F.REMOVED_REASON)


FILLER = "x = f(1)  # a comment\n"  # no pattern matches it, even repeated


def test_recipe_patterns_are_the_defaults():
    section = load_recipe()["filters"]["encoded_data"]
    assert (section["base64_pattern"], section["hex_pattern"], section["unicode_pattern"]) == (
        BASE64_PATTERN,
        HEX_PATTERN,
        UNICODE_PATTERN,
    )
    assert not any(re.search(p, FILLER * 50) for p in (BASE64_PATTERN, HEX_PATTERN, UNICODE_PATTERN))


def test_one_long_match():
    blob = "QUJD" * 256  # 1,024 base64 characters
    assert reason(f'data = "{blob}"\n' + FILLER * 200) is None
    assert reason(f'data = "{blob}A"\n' + FILLER * 200) == "encoded_data"
    escapes = "\\u00e9" * 171  # 1,026 characters
    assert reason(f's = "{escapes}"\n' + FILLER * 200) == "encoded_data"


def test_coverage_boundary():
    run = "A" * 64 + " "
    # 4 matches of 64 in 512 characters: exactly half, kept; one more matched character: dropped
    assert reason(run * 4 + " " * 252) is None
    assert reason(run * 3 + "A" * 65 + " " + " " * 251) == "encoded_data"


def test_coverage_counts_overlapping_patterns_once():
    # "de\nad\n..." is both a base64 run (newlines are in its class) and a hex run: 66 characters
    both = "de\nad\nbe\nef\n" * 5 + "00\n11\n"
    assert re.fullmatch(BASE64_PATTERN, both) and re.fullmatch(HEX_PATTERN, both)
    # (dots, not spaces: the hex pattern's trailing \s* would take spaces into the match)
    assert reason(both + "." * 74) is None  # 66 / 140 covered
    assert reason(both + "." * 65) == "encoded_data"  # 66 / 131


@pytest.mark.parametrize(
    "text, matched",
    [
        ("0x01,0x02,0x03,0x04,0x05,0x06,0x07,0x08", True),
        ("de ad be ef 00 11 22 33", True),
        ("0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08", False),  # comma then space: no match
        ("de ad be ef 00 11 22", False),  # seven bytes
    ],
)
def test_hex_pattern_as_published(text, matched):
    assert bool(re.search(HEX_PATTERN, text)) is matched


def test_escaped_hex_loses_first_byte():
    m = re.search(HEX_PATTERN, 's = "\\x48\\x31\\xc0\\x50\\x68\\x2f\\x2f\\x73\\x68"')
    assert m and m.group().startswith("\\x31")


def _near_misses(seed: int, n: int) -> list[str]:
    """Text around the patterns' thresholds: runs of 5-12 hex groups, base64 and escapes."""
    rng = random.Random(seed)
    noise = ["foo", '"', "'", " ", "(", "a_b", "é", "\\", "0", "x = [", "];", "\n"]
    texts = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 8)):
            r = rng.random()
            if r < 0.4:
                prefix = rng.choice(["", "0x", "\\x", "0X", "x"])
                sep = rng.choice([",", " ", ", ", "\n", "", ",\n", "  ", "\t", ";"])
                groups = (
                    rng.choice([prefix, prefix, "0x", "\\x", ""]) + f"{rng.randrange(256):02x}"
                    for _ in range(8)
                )
                parts.append(sep.join(list(groups)[: rng.randint(5, 12)]))
            elif r < 0.6:
                parts.append("".join(rng.choice("abcXYZ019+/=\n") for _ in range(rng.randint(40, 100))))
            elif r < 0.8:
                parts.append("".join(f"\\u{rng.randrange(65536):04x}" for _ in range(rng.randint(5, 12))))
            else:
                parts.append(rng.choice(noise))
        texts.append("".join(parts))
    return texts


def test_faster_forms_find_the_same_matches():
    texts = _near_misses(seed=0, n=3000)
    stdlib = sorted(Path(re.__file__).parent.parent.glob("*.py"))[:40]  # real code too
    texts += [p.read_text(encoding="utf-8") for p in stdlib]
    texts += ["A" * 64, "A" * 63, "é" + "A" * 64 + "\udcff" + "B" * 70, "\n" * 64 + " "]
    found = 0
    for published, faster in [
        (BASE64_PATTERN, Base64Runs()),
        (HEX_PATTERN, RegexSpans(HEX_PATTERN)),
        (UNICODE_PATTERN, RegexSpans(UNICODE_PATTERN)),
    ]:
        regex = re.compile(published)
        for text in texts:
            spans = [m.span() for m in regex.finditer(text)]
            assert spans == list(faster(text)), (published, text[:200])
            found += len(spans)
    assert found > 1000  # the generated text does exercise the patterns


def test_other_patterns_run_as_written():
    step = EncodedDataFilter(base64_pattern="[A]{4,}", unicode_pattern="zz")
    assert [type(m) for m in step.matchers] == [RegexSpans] * 3
    assert step.matchers[0].regex.pattern == "[A]{4,}"
    assert step.process(make_file("AAAA.")) == "encoded_data"


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "hostile, expected",
    [
        ("ab " * 350_000, "encoded_data"),  # 1 MB of hex bytes: one huge match
        (("ab " * 7 + "zz ") * 45_000, None),  # 1 MB of seven-byte near misses
        (("A" * 63 + " ") * 16_000, None),  # 1 MB of 63-character base64 near misses
        (("\\u0041" * 7 + "x") * 23_300, None),  # 1 MB of seven-escape near misses
        ("0" * 1_000_000, "encoded_data"),  # one base64 run
    ],
)
def test_hostile_inputs(hostile, expected):
    assert len(hostile) >= 1_000_000
    assert reason(hostile) == expected


def test_plain_code_kept():
    code = "def f(x):\n    return {'a': 0x1f, 'b': [1, 2, 3]}\n" * 40
    assert reason(code) is None
