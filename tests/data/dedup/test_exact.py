"""Exact dedup (recipe.md §1 stage 4) on generated shards: the same blob in several repositories,
one survivor per blob id chosen by each ranking criterion, whatever the number of buckets."""

from __future__ import annotations

from collections import Counter

import pytest

from data.dedup.helpers import blob_id, final_pass, recipe, removed, row, run_passes, write_shards
from stackcoder.data import fields as F
from stackcoder.data.dedup import dedup_passes, dedup_stats
from stackcoder.data.dedup.exact import blob_bucket

ONLY_EXACT = recipe(near=False)


def shards() -> list[list[dict]]:
    """Three shards; each group's copies are spread over them, the survivor never in shard 0 alone."""
    lic, stars, forks, rev, tie = (
        f"print('{name}')\n" for name in ("license", "stars", "forks", "rev", "tie")
    )
    day = "2023-05-01T00:00:00+00:00"
    return [
        [
            row(lic, "b/nolic", **{F.LICENSE_TYPE: F.NO_LICENSE, F.STARS: 100}),
            row(stars, "s/five", **{F.STARS: 5}),
            row(forks, "f/one", **{F.STARS: 7, F.FORKS: 1}),
            row(rev, "r/old", **{F.REVISION_DATE: "2020-01-01T00:00:00+00:00"}),
            row(tie, "zed/x", **{F.STARS: 1, F.REVISION_DATE: day}),
            row("print('only here')\n", "u/one"),
        ],
        [
            row(lic, "c/nonperm", **{F.LICENSE_TYPE: F.NON_PERMISSIVE, F.STARS: 500}),
            row(stars, "s/fifty", **{F.STARS: 50}),
            row(forks, "f/nine", **{F.STARS: 7, F.FORKS: 9}),
            row(rev, "r/new", **{F.REVISION_DATE: "2024-06-30T10:00:00+00:00"}),
            row(tie, "amy/x", **{F.STARS: 1, F.REVISION_DATE: day}),
            row(tie, "amy/x", path="src/copy.py", **{F.STARS: 1, F.REVISION_DATE: day}),
        ],
        [
            row(lic, "a/perm", **{F.STARS: 0}),
            row(stars, "s/none", **{F.STARS: None}),
            row(forks, "f/none", **{F.STARS: 7, F.FORKS: None}),
            row(rev, "r/undated", **{F.REVISION_DATE: None}),
            row("print('only here')\n", "u/two", path="other.py"),  # same content, other path: still a dup
            row("print('unique')\n", "u/three"),
        ],
    ]


EXPECTED = {
    ("b/nolic", "src/main.py"): "a/perm/src/main.py",  # license class first
    ("c/nonperm", "src/main.py"): "a/perm/src/main.py",
    ("s/five", "src/main.py"): "s/fifty/src/main.py",  # then stars (None lowest)
    ("s/none", "src/main.py"): "s/fifty/src/main.py",
    ("f/one", "src/main.py"): "f/nine/src/main.py",  # then forks
    ("f/none", "src/main.py"): "f/nine/src/main.py",
    ("r/old", "src/main.py"): "r/new/src/main.py",  # then the later revision
    ("r/undated", "src/main.py"): "r/new/src/main.py",
    ("zed/x", "src/main.py"): "amy/x/src/copy.py",  # then (repo_name, path)
    ("amy/x", "src/main.py"): "amy/x/src/copy.py",
    ("u/two", "other.py"): "u/one/src/main.py",
}


@pytest.mark.parametrize("buckets", [1, 3, 8])
def test_one_survivor_per_blob_by_the_ranking(tmp_path, buckets):
    write_shards(tmp_path, shards())
    run_passes(tmp_path, 3, buckets, ONLY_EXACT)
    files = final_pass(tmp_path, 3, buckets, ONLY_EXACT)
    got = removed(files)
    assert {k: v[2] for k, v in got.items()} == EXPECTED
    assert {v[:2] for v in got.values()} == {("exact_dedup", "exact_duplicate")}
    assert len(files) - len(got) == 7  # 5 groups + 2 unique files survive


def test_stats_for_the_card(tmp_path):
    write_shards(tmp_path, shards())
    run_passes(tmp_path, 3, 4, ONLY_EXACT)
    stats = dedup_stats(tmp_path)
    assert stats["near"] is None
    exact = stats["exact"]
    assert exact["clusters"] == 6
    assert exact["removed"] == len(EXPECTED)
    assert exact["files_in_clusters"] == 6 + len(EXPECTED)
    assert exact["cluster_sizes"] == {"2": 1, "3": 5}
    assert exact["languages"]["Python"]["removed"] == len(EXPECTED)
    assert exact["bytes_removed"] == sum(len(f"print('{n}')\n") for n in ["license"] * 2) + sum(
        len(f"print('{n}')\n") * 2 for n in ("stars", "forks", "rev", "tie")
    ) + len("print('only here')\n")


def test_missing_shards_and_files_without_blob_id(tmp_path):
    content = "x = 1\n"
    write_shards(
        tmp_path, [[row(content, "a/a")], [], [row(content, "b/b"), row(content, "c/c", blob_id=None)]]
    )
    run_passes(tmp_path, 3, 2, ONLY_EXACT)
    got = removed(final_pass(tmp_path, 3, 2, ONLY_EXACT))
    assert got == {("b/b", "src/main.py"): ("exact_dedup", "exact_duplicate", "a/a/src/main.py")}


def test_disabled_exact_dedup_has_no_passes_and_removes_nothing(tmp_path):
    off = recipe(exact=False, near=False)
    assert dedup_passes(tmp_path, 3, 2, off) == []
    write_shards(tmp_path, shards())
    files = final_pass(tmp_path, 3, 2, off)
    assert len(files) == 18 and removed(files) == {}


def test_blob_buckets_spread_evenly():
    counts = Counter(blob_bucket(blob_id(f"x = {i}\n"), 4) for i in range(4000))
    assert set(counts) == {0, 1, 2, 3} and min(counts.values()) > 900
