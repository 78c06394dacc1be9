"""The Data Portrait's Bloom filter on real code: recipe.md §5's normalisation, spans found for text
that is in the data (with their place in the query as given), none for text that is not, and a
measured false-positive rate near the configured one."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from stackcoder.index.portrait import (
    WIDTH,
    Portrait,
    codepoints,
    normalize,
    normalize_with_offsets,
    size_for,
    window_hashes,
    write_shard,
)


def package_files(name: str, limit: int = 80) -> list[str]:
    root = Path(next(iter(importlib.util.find_spec(name).submodule_search_locations)))
    texts = [p.read_text("utf-8") for p in sorted(root.rglob("*.py"))[:limit]]
    return [t for t in texts if len(t) > 500]


def test_normalisation_and_offsets():
    text = "def f(x):\r\n\n\n    return  x\t+ 1   \n\n  # done\n"
    assert normalize(text) == "def f(x):\nreturn x + 1\n# done"
    norm, where = normalize_with_offsets(text)
    assert len(where) == len(norm)
    assert all(text[w] == c for w, c in zip(where, norm, strict=True) if not c.isspace())
    assert normalize("   lead\n\n\n\ttab") == "lead\ntab" and normalize("") == ""


def reference_normalize(text: str) -> tuple[str, list[int]]:
    """recipe.md §5 character by character: the definition the vectorised version must equal."""
    out: list[str] = []
    where: list[int] = []
    newline = space = -1
    for i, c in enumerate(text):
        if c in "\r\n":
            newline = i if newline < 0 else newline
            space = -1
        elif c.isspace():
            if newline < 0 and space < 0 and out:
                space = i
        else:
            if newline >= 0 and out:
                out.append("\n")
                where.append(newline)
            elif space >= 0:
                out.append(" ")
                where.append(space)
            newline = space = -1
            out.append(c)
            where.append(i)
    return "".join(out), where


def test_vectorised_normalisation_equals_the_definition():
    rng = np.random.default_rng(0)
    alphabet = list("ab(){}=;\u00e9\u4e2d") + [
        " ",
        "\t",
        "\n",
        "\r",
        "\x0b",
        "\x0c",
        "\u00a0",
        "\u3000",
        "\u2028",
    ]
    cases = ["".join(rng.choice(alphabet, int(rng.integers(0, 60)))) for _ in range(500)]
    cases += package_files("markupsafe")[:5] + ["\n\n", "   ", "x", " x ", "\U0001f600 y"]
    for text in cases:
        assert normalize_with_offsets(text) == reference_normalize(text), repr(text)


def test_every_whitespace_codepoint_is_in_the_table():
    assert all(not chr(c).isspace() for c in range(0x3001, 0x110000))


def test_window_hashes_equal_the_polynomial_computed_directly():
    from stackcoder.index import portrait

    text = package_files("markupsafe")[0][:700] + "\u4e2d\U0001f600" * 30
    codes = codepoints(text)
    base, mask = portrait._BASE, (1 << 64) - 1
    direct = []
    for i in range(len(codes) - WIDTH + 1):
        h = 0
        for c in codes[i : i + WIDTH]:
            h = (h * base + int(c)) & mask
        direct.append(h)
    assert window_hashes(codes).tolist() == direct
    assert window_hashes(codes, WIDTH).tolist() == direct[::WIDTH]
    assert len(window_hashes(codes[: WIDTH - 1])) == 0


def test_size_for_follows_the_formula():
    m, k = size_for(1_000_000, 0.01)
    assert 9.5e6 < m < 9.6e6 and k == 7  # 9.59 bits per item and 7 hashes at 1%


@pytest.fixture(scope="module")
def portrait(tmp_path_factory):
    data = package_files("tokenizers") + package_files("markupsafe")
    shards = [data[0::2], data[1::2]]
    root = tmp_path_factory.mktemp("portrait")
    for i, texts in enumerate(shards):
        meta = write_shard(root, f"{i:05d}", texts, fpr=0.01)
        (root / f"{i:05d}.json").write_text(json.dumps(meta))
    return Portrait(root), data


def test_text_from_the_data_is_found_where_it_is(portrait):
    p, data = portrait
    source = data[3]
    start = len(source) // 3
    excerpt = source[start : start + 400]
    query = "# my own code, not in the data at all: 0123456789\n" + excerpt + "\nprint('mine too')\n"
    found = p.query(query)
    assert found, "a 400-character excerpt of a file in the data must be found"
    best = max(found, key=lambda s: s.end - s.start)
    offset = query.index(excerpt)
    assert offset <= best.start < offset + 2 * WIDTH + 40  # within the first aligned n-grams (indent aside)
    assert best.end <= offset + len(excerpt) + 5 and best.end - best.start >= 200
    assert best.ngrams >= 4 and best.chance_probability < 1e-6


def test_every_span_of_100_characters_is_found(portrait):
    p, data = portrait
    rng = np.random.default_rng(1)
    for _ in range(30):
        t = data[int(rng.integers(len(data)))]
        a = int(rng.integers(0, len(t) - 150))
        # at least 100 characters of normalised text: two aligned n-grams at any alignment
        while len(normalize(t[a : a + 150])) < 2 * WIDTH + WIDTH - 1 and a + 150 < len(t):
            a += 1
        assert p.query(t[a : a + 150]) or len(normalize(t[a : a + 150])) < 3 * WIDTH - 1


def test_absent_text_is_not_found_and_the_rate_is_measured(portrait):
    p, _ = portrait
    for s in p.shards_meta:
        assert 0.002 < s["measured_fpr"] < 0.03  # target 1%
    rng = np.random.default_rng(2)
    words = ["alpha", "beta", "gamma", "delta", "value", "index", "result", "count", "item", "node"]
    absent = "\n".join(" ".join(rng.choice(words, 8)) + f" = {int(rng.integers(1e9))}" for _ in range(60))
    found = p.query(absent)
    offsets = len(normalize(absent)) - WIDTH + 1
    # chance hits only: about fpr per offset, chains of three (fpr³ per offset) practically never
    assert len(found) < 5 * p.fpr * offsets + 5
    assert all(s.ngrams < 3 for s in found) and p.query(absent, min_ngrams=3) == []


def test_a_fixed_capacity_sizes_every_shard_alike_and_the_size_is_three_percent(tmp_path):
    texts = package_files("tokenizers") + package_files("markupsafe")
    small = write_shard(tmp_path, "a", texts[:2], capacity=10_000)
    large = write_shard(tmp_path, "b", texts, capacity=10_000)
    assert small["m"] == large["m"] and small["ngrams"] < large["ngrams"]
    exact = write_shard(tmp_path, "c", texts)
    corpus = sum(len(t.encode()) for t in texts)
    assert (exact["m"] / 8) / corpus < 0.03  # the Data Portraits footprint at 1%
    assert 0.002 < exact["measured_fpr"] < 0.03


def test_an_index_without_shards_is_a_clear_error(tmp_path):
    from stackcoder.errors import UserError

    with pytest.raises(UserError, match="no Bloom filter shards"):
        Portrait(tmp_path)
