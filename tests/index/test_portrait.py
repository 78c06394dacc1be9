"""The Data Portrait's Bloom filter on real code: recipe.md §5's normalisation, spans found for text
that is in the data (with their place in the query as given), none for text that is not, and a
measured false-positive rate near the configured one."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from stackcoder.index.portrait import WIDTH, Portrait, normalize, normalize_with_offsets, size_for


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


def test_size_for_follows_the_formula():
    m, k = size_for(1_000_000, 0.01)
    assert 9.5e6 < m < 9.6e6 and k == 7  # 9.59 bits per item and 7 hashes at 1%


@pytest.fixture(scope="module")
def portrait(tmp_path_factory):
    data = package_files("tokenizers") + package_files("markupsafe")
    shards = [data[0::2], data[1::2]]
    capacity = max(sum(len(normalize(t)) // WIDTH for t in s) for s in shards)
    return Portrait.build(tmp_path_factory.mktemp("portrait"), shards, capacity=capacity, fpr=0.01), data


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
    for s in p.meta["shards"]:
        assert 0.002 < s["measured_fpr"] < 0.03  # target 1%
    rng = np.random.default_rng(2)
    words = ["alpha", "beta", "gamma", "delta", "value", "index", "result", "count", "item", "node"]
    absent = "\n".join(" ".join(rng.choice(words, 8)) + f" = {int(rng.integers(1e9))}" for _ in range(60))
    found = p.query(absent)
    offsets = len(normalize(absent)) - WIDTH + 1
    # chance hits only: about fpr per offset, chains of three (fpr³ per offset) practically never
    assert len(found) < 5 * p.fpr * offsets + 5
    assert all(s.ngrams < 3 for s in found) and p.query(absent, min_ngrams=3) == []
