"""Near dedup (recipe.md §1 stage 5): tokens and shingles as the recipe defines them, signatures,
LSH candidates, components and survivors, on real files and edited copies of them."""

from __future__ import annotations

import difflib
import gc
import json
import re
import subprocess
import sys
import textwrap
import weakref
from pathlib import Path

import numpy as np
import pytest

from data.dedup.helpers import final_pass, recipe, removed, row, run_passes, write_shards
from stackcoder.data import fields as F
from stackcoder.data.dedup import dedup_stats
from stackcoder.data.dedup.minhash import (
    BAND_RECORD,
    PAIR,
    MinhashConfig,
    band_keys,
    candidate_pairs,
    connected_components,
    estimated_jaccard,
    iter_pairs,
    normalized,
    shingle_hashes,
    signature,
    token_hashes,
)

pytest.importorskip("rensa", reason="rensa is not installed")

NEAR_ONLY = recipe(exact=False)
# real files: this interpreter's standard library
TEXTWRAP = Path(textwrap.__file__).read_text()
DIFFLIB = Path(difflib.__file__).read_text()
JSON_DECODER = Path(json.decoder.__file__).read_text()
SUBPROCESS = Path(subprocess.__file__).read_text()


def ref_tokens(text: str) -> list[str]:
    """The recipe's tokens, straight from its words."""
    return [t for t in re.split(r"\W+", text.lower()) if t]


def ref_jaccard(a: str, b: str, n: int = 5) -> float:
    def shingles(text):
        t = ref_tokens(text)
        return {tuple(t[i : i + n]) for i in range(len(t) - n + 1)}

    x, y = shingles(a), shingles(b)
    return len(x & y) / len(x | y)


# --- tokens and shingles ------------------------------------------------------------------------


def test_tokens_are_the_recipes_on_ascii_and_unicode_text():
    texts = [
        TEXTWRAP,
        "naïve café = ÄÖÜ + straße; İstanbul東京 — €100 x_y２ ﬁle\u00a0word\tend",
        "Ünïcode_idént = 1  # the same tokens as ascii: unicode_ident, x_y2\nunicode_ident = x_y2",
        "   ",
        "",
    ]
    seen: dict[str, int] = {}
    for text in texts:
        ours = token_hashes(normalized(text))
        ref = ref_tokens(text)
        assert len(ours) == len(ref)
        for token, h in zip(ref, ours.tolist(), strict=True):
            assert seen.setdefault(token, h) == h  # one token, one hash, whichever path read it
    assert len(set(seen.values())) == len(seen)  # distinct tokens, distinct hashes


def test_a_non_ascii_character_does_not_change_the_other_shingles():
    ascii_only = shingle_hashes(TEXTWRAP)
    with_accent = shingle_hashes(TEXTWRAP.replace("Text wrapping", "Text wräpping", 1))
    assert TEXTWRAP.isascii() and "Text wrapping" in TEXTWRAP
    differ = set(ascii_only.tolist()) ^ set(with_accent.tolist())
    assert 0 < len(differ) <= 10  # only the shingles holding that one token (5 out, 5 in)


def test_shingles_match_the_reference_sets():
    for text in (TEXTWRAP, JSON_DECODER):
        tokens = ref_tokens(text)
        ours = shingle_hashes(text, 5)
        assert len(ours) == len(tokens) - 4
        assert len(set(ours.tolist())) == len({tuple(tokens[i : i + 5]) for i in range(len(tokens) - 4)})


def test_fewer_than_ngram_tokens_have_no_shingles():
    assert shingle_hashes("def f(x): return", 5) is None  # 4 tokens
    assert len(shingle_hashes("def f(x): return x", 5)) == 1
    assert shingle_hashes("", 5) is None


# --- signatures -----------------------------------------------------------------------------------


def test_signatures_are_deterministic_across_processes_and_seeded():
    sig = signature(shingle_hashes(DIFFLIB), 250, 1)
    assert sig.dtype == np.uint32 and sig.shape == (250,)
    assert np.array_equal(sig, signature(shingle_hashes(DIFFLIB), 250, 1))
    code = (
        "import difflib, sys; from pathlib import Path\n"
        "from stackcoder.data.dedup.minhash import shingle_hashes, signature\n"
        "s = signature(shingle_hashes(Path(difflib.__file__).read_text()), 250, 1)\n"
        "sys.stdout.write(','.join(map(str, s.tolist())))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out == ",".join(map(str, sig.tolist()))
    other_seed = signature(shingle_hashes(DIFFLIB), 250, 2)
    assert estimated_jaccard(sig, other_seed) < 0.1


def test_estimated_jaccard_tracks_the_true_one():
    lines = SUBPROCESS.splitlines(keepends=True)
    a = "".join(lines[:800])
    for cut in (40, 120, 240):
        b = "".join(lines[cut : 800 + cut])
        true = ref_jaccard(a, b)
        est = float(estimated_jaccard(signature(shingle_hashes(a)), signature(shingle_hashes(b))))
        assert abs(est - true) < 0.1, (cut, true, est)  # ~3.5 standard deviations at 250 slots


def test_band_keys_depend_on_language_band_and_rows():
    sig = signature(shingle_hashes(TEXTWRAP))
    keys = band_keys(sig, "Python", 25, 10)
    assert len(set(keys.tolist())) == 25
    assert not set(keys.tolist()) & set(band_keys(sig, "Text", 25, 10).tolist())
    changed = sig.copy()
    changed[3] += 1  # a slot of band 0
    diff = band_keys(changed, "Python", 25, 10) != keys
    assert diff.tolist() == [True] + [False] * 24


def test_config_checks_bands_times_rows():
    with pytest.raises(ValueError, match="bands x rows"):
        MinhashConfig(num_perm=250, bands=20, rows=10)


# --- candidate pairs and components ---------------------------------------------------------------


def records(*groups: list[int]) -> np.ndarray:
    recs = [(key, fid) for key, fids in enumerate(groups) for fid in fids]
    return np.array(recs, dtype=BAND_RECORD)[::-1]  # any order in


def test_files_sharing_a_key_are_chained_to_the_first():
    pairs, compared, kept = candidate_pairs(records([7, 3, 9], [4], [3, 8], [8, 3]))
    assert pairs.tolist() == [(3, 7), (3, 8), (3, 9)]
    assert (compared, kept) == (4, 4)  # (3, 8) shares two keys


def test_a_file_failing_against_the_first_is_tried_with_the_others():
    similar_pairs = {(3, 5), (5, 9)}  # 7 is like nobody, 9 is like 5 but not like 3

    def similar(pairs):
        return np.array([(min(p), max(p)) in similar_pairs for p in pairs.tolist()], dtype=bool)

    pairs, compared, kept = candidate_pairs(records([3, 5, 7, 9]), similar)
    assert pairs.tolist() == [(3, 5), (5, 9)]
    assert kept == 2  # (3, 5) against the first, (5, 9) as a retry
    assert compared == 3 + 4  # 3 against the first, then 7 and 9 each against 5 and each other


def test_components_match_a_reference_on_random_graphs():
    rng = np.random.default_rng(0)
    for n, m in ((50, 30), (400, 390), (1000, 2000)):
        a, b = rng.integers(0, n, m), rng.integers(0, n, m)
        parent = list(range(n))

        def find(x, parent=parent):
            while parent[x] != x:
                x = parent[x]
            return x

        for x, y in zip(a.tolist(), b.tolist(), strict=True):
            parent[max(find(x), find(y))] = min(find(x), find(y))
        expected = [find(x) for x in range(n)]
        chunks = ((a[i : i + 7], b[i : i + 7]) for i in range(0, m, 7))
        assert connected_components(n, chunks).tolist() == expected


def test_components_stream_pairs_from_disk_one_chunk_at_a_time(tmp_path):
    n, m, chunk = 5000, 60_000, 1000
    rng = np.random.default_rng(1)
    pairs = np.empty(m, dtype=PAIR)
    pairs["a"], pairs["b"] = rng.integers(0, n, m), rng.integers(0, n, m)
    pairs.tofile(tmp_path / "pairs.bin")
    held = []  # weak references to chunks already handed out
    handed = 0

    def stream():
        nonlocal handed
        for c in iter_pairs(tmp_path / "pairs.bin", chunk_pairs=chunk):
            gc.collect()
            assert all(r() is None for r in held), "an earlier chunk of pairs is still held"
            a, b = c["a"].astype(np.int64), c["b"].astype(np.int64)
            held.extend([weakref.ref(c), weakref.ref(a), weakref.ref(b)])
            handed += len(c)
            del c
            yield a, b
            del a, b

    gen = stream()
    labels = connected_components(n, gen)
    assert handed == m and next(gen, None) is None  # read once, to the end
    assert labels.tolist() == connected_components(n, [(pairs["a"], pairs["b"])]).tolist()


# --- the passes on real files -----------------------------------------------------------------------


def rename(text: str, old: str, new: str) -> str:
    return re.sub(rf"\b{old}\b", new, text)


def edited_copies() -> dict[str, str]:
    """textwrap.py and copies of it: renamed variables, a few changed lines, both."""
    lines = TEXTWRAP.splitlines(keepends=True)
    changed = list(lines)
    for i in range(50, len(lines), 40):
        changed[i] = f"    # edited line {i}: {lines[i].strip()[::-1]}\n"
    return {
        "renamed": rename(rename(TEXTWRAP, "cur_line", "current"), "chunk", "piece"),
        "lines_changed": "".join(changed),
        "both": rename("".join(changed[10:]), "chunks", "pieces"),
    }


def test_edited_copies_of_a_real_file_are_clustered_and_unrelated_files_not(tmp_path):
    copies = edited_copies()
    for text in copies.values():
        assert 0.7 <= ref_jaccard(TEXTWRAP, text) < 1
    write_shards(
        tmp_path,
        [
            [
                row(copies["renamed"], "fork/renamed", **{F.STARS: 100}),
                row(DIFFLIB, "py/difflib", "difflib.py"),
            ],
            [row(TEXTWRAP, "py/cpython", "textwrap.py", **{F.STARS: 100, F.FORKS: 50})],
            [
                row(copies["lines_changed"], "fork/lines"),
                row(copies["both"], "fork/both"),
                row(JSON_DECODER, "py/json", "decoder.py"),
            ],
        ],
    )
    run_passes(tmp_path, 3, 2, NEAR_ONLY)
    got = removed(final_pass(tmp_path, 3, 2, NEAR_ONLY))
    survivor = "py/cpython/textwrap.py"
    assert got == {
        (repo, "src/main.py"): ("near_dedup", "near_duplicate", survivor)
        for repo in ("fork/renamed", "fork/lines", "fork/both")
    }
    near = dedup_stats(tmp_path)["near"]
    assert near["clusters"] == 1 and near["cluster_sizes"] == {"4": 1} and near["removed"] == 3
    assert near["languages"]["Python"]["removed"] == 3


def test_transitive_pairs_make_one_component(tmp_path):
    lines = SUBPROCESS.splitlines(keepends=True)
    a, b, c = ("".join(lines[s : s + 600]) for s in (0, 70, 140))
    assert ref_jaccard(a, b) >= 0.7 and ref_jaccard(b, c) >= 0.7 and ref_jaccard(a, c) < 0.7
    write_shards(
        tmp_path, [[row(a, "x/a", **{F.STARS: 1})], [row(b, "x/b", **{F.STARS: 3})], [row(c, "x/c")]]
    )
    run_passes(tmp_path, 3, 1, NEAR_ONLY)
    got = removed(final_pass(tmp_path, 3, 1, NEAR_ONLY))
    assert {k[0]: v[2] for k, v in got.items()} == {"x/a": "x/b/src/main.py", "x/c": "x/b/src/main.py"}


def test_the_same_text_in_two_languages_is_not_a_near_duplicate(tmp_path):
    write_shards(
        tmp_path,
        [[row(TEXTWRAP, "a/py", language="Python")], [row(TEXTWRAP, "a/txt", "notes.txt", language="Text")]],
    )
    run_passes(tmp_path, 2, 2, NEAR_ONLY)
    assert removed(final_pass(tmp_path, 2, 2, NEAR_ONLY)) == {}
    # exact dedup is across languages: there the second copy goes
    run_passes(tmp_path, 2, 2, recipe())
    got = removed(final_pass(tmp_path, 2, 2, recipe()))
    assert [v[:2] for v in got.values()] == [("exact_dedup", "exact_duplicate")]


def test_files_with_fewer_than_five_tokens_are_skipped(tmp_path):
    short = "import os, sys\n"  # 3 tokens
    write_shards(tmp_path, [[row(short, "a/a"), row(short, "b/b")], [row(TEXTWRAP, "c/c")]])
    run_passes(tmp_path, 2, 1, NEAR_ONLY)
    assert removed(final_pass(tmp_path, 2, 1, NEAR_ONLY)) == {}
    near = dedup_stats(tmp_path)["near"]
    assert (near["files"], near["skipped_short"], near["signed"]) == (3, 2, 1)


def test_exact_duplicates_are_not_signed(tmp_path):
    write_shards(
        tmp_path, [[row(TEXTWRAP, "a/a")], [row(TEXTWRAP, "b/b"), row(edited_copies()["renamed"], "c/c")]]
    )
    run_passes(tmp_path, 2, 3, recipe())
    got = removed(final_pass(tmp_path, 2, 3, recipe()))
    assert got == {
        ("b/b", "src/main.py"): ("exact_dedup", "exact_duplicate", "a/a/src/main.py"),
        ("c/c", "src/main.py"): ("near_dedup", "near_duplicate", "a/a/src/main.py"),
    }
    near = dedup_stats(tmp_path)["near"]
    assert (near["skipped_exact_duplicate"], near["signed"], near["removed"]) == (1, 2, 1)
