"""`stackcoder index` on a dataset built from the fixture repositories: the build pass, membership
with provenance, search with filters and snippets, whois, and opt-out updates."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from helpers import random_text
from stackcoder.cli import main
from stackcoder.data.executor import RunOptions
from stackcoder.errors import UserError
from stackcoder.index.build import build_index
from stackcoder.index.config import IndexConfig
from stackcoder.index.fulltext import Filters, TextIndex, TextShardWriter, license_ids, phrase_words
from stackcoder.index.portrait import WIDTH, normalize
from stackcoder.index.service import DEFAULT_MAX_CHANCE, DatasetIndex, admitted_by, merge_ranges, min_chain


def dataset_files(dataset: Path) -> list[dict]:
    return [r for f in sorted((dataset / "files").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def pick(files: list[dict], language: str, min_len: int = 1500) -> dict:
    return next(f for f in files if f["language"] == language and len(normalize(f["content"])) > min_len)


def test_build_writes_shards_with_measured_rates_and_the_summary(dataset, index_dir):
    files = dataset_files(dataset)
    s = json.loads((index_dir / "index.json").read_text())
    assert s["shards"] == 2 and s["files"] == len(files)
    assert s["repositories"] == len({f["repo_name"] for f in files})
    assert s["content_bytes"] == sum(len(f["content"].encode()) for f in files)
    assert s["ngrams"] == sum(len(normalize(f["content"])) // WIDTH for f in files)
    assert s["portrait_share_of_corpus"] < 0.03  # Data Portraits' footprint at 1%
    assert 0 < s["measured_fpr"]["combined"] < 0.02  # each shard sized for fpr / shards
    shard_meta = json.loads((index_dir / "portrait" / "00000.json").read_text())
    assert shard_meta["target_fpr"] == pytest.approx(0.005) and shard_meta["measured_fpr"] < 0.012
    assert sorted(p.name for p in (index_dir / "text").iterdir()) == ["00000", "00001"]


def test_a_file_of_the_data_is_found_with_its_provenance(dataset, index_dir):
    f = pick(dataset_files(dataset), "Python")
    excerpt = f["content"][200:1200]
    mine = "# my own lines, nowhere in the data: 7f3a9c\nanswer = 42  # and more of mine, certainly\n"
    text = mine + excerpt + "\n" + mine
    spans = DatasetIndex(index_dir).query(text)
    best = max(spans, key=lambda s: s["end"] - s["start"])
    assert best["confirmed"] and best["ngrams"] >= 10 and best["chance_probability"] < 1e-15
    assert len(mine) <= best["start"] < len(mine) + 2 * WIDTH + 30
    assert best["end"] <= len(mine) + len(excerpt) + 1
    source = next(r for r in best["sources"] if r["path"] == f["path"])
    assert source == {
        "repo_name": f["repo_name"],
        "path": f["path"],
        "blob_id": f["blob_id"],
        "language": f["language"],
        "license_type": f["license_type"],
        "detected_licenses": list(f["detected_licenses"]),
        "revision_id": f["revision_id"] or "",
    }
    # the merged overlap the editor gets covers the excerpt and none of my lines
    ranges = DatasetIndex(index_dir).overlap(text)
    assert any(
        s <= len(mine) + 2 * WIDTH + 30 and e >= len(mine) + len(excerpt) - 2 * WIDTH for s, e in ranges
    )
    assert all(s >= len(mine) - 1 and e <= len(mine) + len(excerpt) + 1 for s, e in ranges)


def test_text_not_in_the_data_has_no_confirmed_span(index_dir):
    text = "\n".join(
        f"def unseen_function_{i}(alpha, beta):\n    return alpha * {i} + beta // {i + 7}" for i in range(40)
    )
    assert DatasetIndex(index_dir).query(text) == []
    hits = DatasetIndex(index_dir).query(text, all_hits=True)  # the raw view: chance hits, unadmitted
    assert not any(s["confirmed"] for s in hits)
    assert all(s["ngrams"] == 1 and s["admitted_by"] is None for s in hits)
    assert DatasetIndex(index_dir).overlap(text) == []


@pytest.mark.parametrize(
    ("size", "seed", "kind"),
    [
        (5_000, 0, "chars"),
        (5_000, 1, "code"),
        (20_000, 2, "chars"),
        (100_000, 3, "code"),
        (100_000, 4, "chars"),
    ],
)
def test_random_text_has_no_span_by_default(index_dir, tmp_path, capsys, size, seed, kind):
    """Testing every offset at a ~1% rate hits ~1% of the offsets of any text: the membership
    answer must not report them (issue 13: 51 spans, 39% "covered", on 5,000 random characters)."""
    text = random_text(size, seed, kind)
    ix = DatasetIndex(index_dir)
    raw = ix.query(text, all_hits=True)
    fpr = ix.portrait.fpr
    assert 0.3 * fpr * size < len(raw) < 3 * fpr * size  # the chance hits are there...
    assert all(s["admitted_by"] is None and s["confirmed"] is False for s in raw)  # ...and none holds up
    assert ix.query(text) == [] and ix.query(text, sources=0) == []
    assert ix.overlap(text) == []
    (tmp_path / "random.txt").write_text(text)
    assert main(["index", "query", "-i", str(index_dir), str(tmp_path / "random.txt")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["spans"] == [] and out["covered"] == 0
    assert out["max_chance"] == DEFAULT_MAX_CHANCE and out["min_chain"] == min_chain(fpr, DEFAULT_MAX_CHANCE)


def test_a_pasted_slice_of_a_file_is_one_confirmed_span_with_its_repository(
    dataset, index_dir, tmp_path, capsys
):
    f = pick(dataset_files(dataset), "Python")
    piece = f["content"][600:1000]
    before, after = random_text(3_000, 7), random_text(3_000, 8)
    (tmp_path / "pasted.txt").write_text(before + piece + after)
    assert main(["index", "query", "-i", str(index_dir), str(tmp_path / "pasted.txt")]) == 0
    out = json.loads(capsys.readouterr().out)
    # one long span; n-grams of other alignments of the slice that the data also holds elsewhere may
    # show as spans inside it (confirmed: their text is in the data); none from the random text
    span = max(out["spans"], key=lambda s: s["end"] - s["start"])
    assert span["admitted_by"] == "confirmed" and span["confirmed"] and span["end"] - span["start"] >= 300
    assert (f["repo_name"], f["path"]) in {(s["repo_name"], s["path"]) for s in span["sources"]}
    assert all(span["start"] <= s["start"] and s["end"] <= span["end"] for s in out["spans"])
    assert len(before) <= span["start"] and span["end"] <= len(before) + len(piece)
    assert out["covered"] == span["end"] - span["start"]
    # the editor's answer is that one range
    assert DatasetIndex(index_dir).overlap(before + piece + after) == [[span["start"], span["end"]]]


def test_the_threshold_and_the_raw_view_on_the_command_line(index_dir, tmp_path, capsys):
    (tmp_path / "random.txt").write_text(random_text(5_000, 0))
    q = ["index", "query", "-i", str(index_dir), str(tmp_path / "random.txt"), "--sources", "0"]
    assert main([*q, "--all-hits"]) == 0
    raw = json.loads(capsys.readouterr().out)
    assert raw["all_hits"] and raw["spans"] and raw["covered"] > 0
    assert all(s["admitted_by"] is None for s in raw["spans"])
    assert main([*q, "--max-chance", "1"]) == 0  # every hit admitted: its chance is ≤ 1
    every = json.loads(capsys.readouterr().out)
    assert len(every["spans"]) == len(raw["spans"]) and every["covered"] == raw["covered"]
    assert {s["admitted_by"] for s in every["spans"]} == {"chain"} and every["min_chain"] == 1
    assert main([*q, "--confirmed-only"]) == 0
    assert json.loads(capsys.readouterr().out)["spans"] == []
    assert main([*q, "--max-chance", "2"]) == 2
    assert "--max-chance 2.0 is not a probability" in capsys.readouterr().err


def test_the_membership_rule():
    from stackcoder.cli.index import DEFAULT_MAX_CHANCE as CLI_DEFAULT
    from stackcoder.index.portrait import Span

    assert CLI_DEFAULT == DEFAULT_MAX_CHANCE
    lone, chain4 = Span(0, 50, 1, 0.0109, "x" * 50), Span(0, 200, 4, 0.0109**4, "x" * 200)
    assert admitted_by(lone, False, DEFAULT_MAX_CHANCE) is None
    assert admitted_by(lone, None, DEFAULT_MAX_CHANCE) is None
    assert admitted_by(lone, True, DEFAULT_MAX_CHANCE) == "confirmed"
    assert admitted_by(chain4, None, DEFAULT_MAX_CHANCE) == "chain"
    assert admitted_by(chain4, True, DEFAULT_MAX_CHANCE) == "confirmed"
    assert admitted_by(chain4, False, 0.0) is None
    # 3 chained n-grams pass 1e-6 at a 0.99% rate, not at 1.09% (0.0109**3 = 1.3e-6)
    assert min_chain(0.0099, 1e-6) == 3 and min_chain(0.0109, 1e-6) == 4
    assert min_chain(0.01, 1.0) == 1 and min_chain(0.01, 0.0) is None


def test_a_phrase_match_is_not_a_confirmation(dataset, index_dir):
    """The full-text pass confirms only text a file really holds: a span whose words a file has in
    the same order, with other characters between them, is not confirmed."""
    f = pick(dataset_files(dataset), "Python")
    norm = normalize(f["content"])
    start = norm.index(" ", 400) + 1
    held = norm[start : start + 80]
    ix = DatasetIndex(index_dir)
    assert ix.text.contains(held) and ix.text.sources(held)[0] >= 1
    cut = held.index(" ", 30)
    altered = held[:cut] + " ~" + held[cut:]  # "~" is no word: the phrase query still matches the file
    assert f["path"] in {r["path"] for _, r in _phrase_candidates(ix, altered)}
    assert not ix.text.contains(altered) and ix.text.sources(altered) == (0, [])


def _phrase_candidates(ix: DatasetIndex, text: str) -> list:
    import tantivy

    from stackcoder.index.fulltext import _record

    q = tantivy.Query.phrase_query(ix.text.schema, "content", phrase_words(text))
    out = []
    for index in ix.text.indexes:
        searcher = index.searcher()
        out += [(s, _record(searcher.doc(a))) for s, a in searcher.search(q, limit=100).hits]
    return out


def test_query_prints_json_from_a_file_or_stdin(dataset, index_dir, tmp_path, capsys, monkeypatch):
    import io

    f = pick(dataset_files(dataset), "Python")
    (tmp_path / "q.py").write_text(f["content"][:600])
    assert (
        main(["index", "query", "--index", str(index_dir), str(tmp_path / "q.py"), "--min-ngrams", "2"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["length"] == 600 and out["covered"] > 400
    assert {"start", "end", "ngrams", "chance_probability", "sources"} <= set(out["spans"][0])
    monkeypatch.setattr("sys.stdin", io.StringIO(f["content"][:600]))
    assert main(["index", "query", "-i", str(index_dir), "--sources", "0"]) == 0
    out2 = json.loads(capsys.readouterr().out)
    assert out2["covered"] >= out["covered"] and all(s["sources"] == [] for s in out2["spans"])


def test_search_ranks_phrases_filters_and_highlights(dataset, index_dir):
    files = dataset_files(dataset)
    ix = DatasetIndex(index_dir)
    r = ix.search('"def escape"', limit=5)
    assert r["total"] >= 1
    hit = r["hits"][0]
    assert "def escape" in normalize(hit["snippet"]) or "escape" in hit["snippet"]
    assert all(hit["snippet"][s:e].lower() in ("def", "escape") for s, e in hit["highlights"])
    assert "<b>" in hit["snippet_html"]

    python = ix.search("import", Filters(language="python"), limit=100)
    assert python["total"] == sum(
        1 for f in files if f["language"] == "Python" and "import" in _words(f["content"])
    )
    assert all(h["source"]["language"] == "Python" for h in python["hits"])
    go = ix.search("import", Filters(language="Go"), limit=100)
    assert go["hits"] and all(h["source"]["language"] == "Go" for h in go["hits"])

    repo = files[0]["repo_name"]
    in_repo = ix.search("", Filters(repo=repo), limit=1000)
    assert in_repo["total"] == sum(1 for f in files if f["repo_name"] == repo)
    owner_glob = ix.search("", Filters(repo=repo[:4].upper() + "*"), limit=1)
    assert owner_glob["total"] >= in_repo["total"]  # case-insensitive, globbed
    py_paths = ix.search("", Filters(path="*.py"), limit=1000)
    assert py_paths["total"] == sum(1 for f in files if f["path"].endswith(".py"))
    licensed = {lic for f in files for lic in f["detected_licenses"]}
    lic = sorted(licensed)[0]
    by_license = ix.search("", Filters(license=lic.lower()), limit=1000)
    assert by_license["total"] == sum(1 for f in files if lic in f["detected_licenses"])
    assert ix.search("", Filters(license="permissive"), limit=1)["total"] == sum(
        1 for f in files if f["license_type"] == "permissive"
    )
    page2 = ix.search("import", limit=2, offset=2)
    assert [h["source"]["path"] for h in page2["hits"]] == [
        h["source"]["path"] for h in ix.search("import", limit=4)["hits"][2:]
    ]
    with pytest.raises(UserError, match="cannot parse"):
        ix.search('"unclosed')


def _words(text: str) -> set[str]:
    import re

    return {w.lower() for w in re.findall(r"[^\W_]+", text)}


def test_search_on_the_command_line(index_dir, capsys):
    assert main(["index", "search", "escape", "-i", str(index_dir), "--language", "python", "-n", "3"]) == 0
    out = capsys.readouterr().out
    assert "files match" in out and "«" in out and "[Python;" in out
    assert main(["index", "search", "escape", "-i", str(index_dir), "--json", "-n", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["hits"][0]["source"]["repo_name"]


def test_whois_lists_an_owners_repositories_from_the_index_and_the_dataset(dataset, index_dir, capsys):
    files = dataset_files(dataset)
    counts = Counter(f["repo_name"] for f in files)
    repo = max(counts, key=counts.get)
    owner = repo.split("/")[0]
    expected = {r: n for r, n in counts.items() if r.split("/")[0].lower() == owner.lower()}
    assert DatasetIndex(index_dir).whois(owner) == dict(sorted(expected.items()))
    assert DatasetIndex(index_dir).whois(owner.upper()) == dict(sorted(expected.items()))
    assert DatasetIndex(index_dir).whois("nobody-at-all") == {}
    assert main(["index", "whois", owner, "--dataset", str(dataset), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == dict(sorted(expected.items()))
    assert main(["index", "whois", owner, "-i", str(index_dir)]) == 0
    assert f"{repo}" in capsys.readouterr().out


def test_optout_removes_a_repository_from_every_part_of_the_index(dataset, index_dir, tmp_path, capsys):
    files = dataset_files(dataset)
    counts = Counter(f["repo_name"] for f in files)
    repo = max(counts, key=counts.get)
    gone = next(f for f in files if f["repo_name"] == repo and len(normalize(f["content"])) > 1500)
    kept = next(f for f in files if f["repo_name"] != repo and len(normalize(f["content"])) > 800)
    index = tmp_path / "index"
    shutil.copytree(index_dir, index)
    before = {p.name: p.read_bytes() for p in (index / "portrait").glob("*.bloom")}
    holding = {
        p.stem
        for p in (index / "portrait").glob("*.json")
        if repo in json.loads(p.read_text())["repositories"]
    }
    assert DatasetIndex(index).query(gone["content"][:900], min_ngrams=2)

    optout = tmp_path / "optout.txt"
    assert main(["optout", "add", repo, "--file", str(optout)]) == 0
    assert main(["index", "optout", "-i", str(index), "--file", str(optout)]) == 0
    assert f"1 repositories ({counts[repo]} files) removed" in capsys.readouterr().out

    ix = DatasetIndex(index)
    assert ix.query(gone["content"][:900], min_ngrams=2) == []
    assert not any(s["confirmed"] for s in ix.query(gone["content"][:900]))
    assert ix.search("", Filters(repo=repo))["total"] == 0
    assert ix.whois(repo) == {}
    assert ix.query(kept["content"][:800], min_ngrams=2)  # the rest is still found
    after = {p.name: p.read_bytes() for p in (index / "portrait").glob("*.bloom")}
    for name in before:  # shards that did not hold the repository are untouched
        assert (before[name] == after[name]) == (Path(name).stem not in holding)
    summary = json.loads((index / "index.json").read_text())
    assert summary["files"] == len(files) - counts[repo]
    assert (
        summary["opt_out"]["applied"] == 1 and summary["opt_out"]["lists"][0]["files_removed"] == counts[repo]
    )
    # nothing of the repository is left in any byte of the index (tantivy's deletions alone would leave it)
    needles = [repo.encode(), gone["content"][300:380].encode()]
    for p in index.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            assert not any(n in data for n in needles), p


def test_the_license_filter_finds_each_alternative_of_an_expression(tmp_path):
    # detected_licenses items may be expressions (a dual-licensed crate): --license names one id
    w = TextShardWriter(tmp_path / "text" / "00000")
    for i, licenses in enumerate([["Apache-2.0 OR MIT"], ["MIT"], ["GPL-2.0-only"], []]):
        w.add(
            {
                "content": f"fn f{i}() {{}}",
                "path": f"src/f{i}.rs",
                "repo_name": "o/r",
                "blob_id": str(i),
                "language": "Rust",
                "license_type": "permissive",
                "detected_licenses": licenses,
            }
        )
    w.close()
    text = TextIndex(tmp_path / "text")

    def paths(lic: str) -> list[str]:
        return sorted(h.source["path"] for h in text.search("", Filters(license=lic), limit=10)[1])

    assert paths("mit") == ["src/f0.rs", "src/f1.rs"]
    assert paths("Apache-2.0") == ["src/f0.rs"]
    assert paths("gpl-2.0-only") == ["src/f2.rs"]
    found = text.search("f0", limit=1)[1][0].source
    assert found["detected_licenses"] == ["Apache-2.0 OR MIT"]  # stored as detected, not split
    assert license_ids(["(MIT OR Apache-2.0) AND LGPL-3.0-only WITH LGPL-3.0-linking-exception"]) == [
        "MIT",
        "Apache-2.0",
        "LGPL-3.0-only",
        "LGPL-3.0-linking-exception",
    ]


def test_an_index_of_another_format_is_refused_with_the_rebuild_command(index_dir, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(index_dir, old)
    meta = json.loads((old / "index.json").read_text())
    (old / "index.json").write_text(json.dumps({**meta, "format": 1}))
    with pytest.raises(UserError, match="rebuild it with `stackcoder index build"):
        DatasetIndex(old)


def test_build_refuses_to_overwrite_and_explains_bad_input(dataset, index_dir, tmp_path):
    with pytest.raises(UserError, match="--overwrite"):
        build_index(IndexConfig(str(dataset), str(index_dir), run=RunOptions(progress=False)))
    with pytest.raises(UserError, match="no files"):
        build_index(IndexConfig(str(tmp_path), str(tmp_path / "out"), run=RunOptions(progress=False)))
    with pytest.raises(UserError, match="--fpr"):
        build_index(IndexConfig(str(dataset), str(tmp_path / "out"), fpr=1.5, run=RunOptions(progress=False)))
    with pytest.raises(UserError, match="not an index"):
        DatasetIndex(tmp_path)


def test_a_rebuild_is_byte_identical_and_a_fixed_capacity_is_kept(dataset, index_dir, tmp_path):
    out = tmp_path / "again"
    build_index(IndexConfig(str(dataset), str(out), shards=2, run=RunOptions(progress=False)))
    for p in sorted((index_dir / "portrait").iterdir()):
        assert (out / "portrait" / p.name).read_bytes() == p.read_bytes(), p.name
    fixed = tmp_path / "fixed"
    build_index(
        IndexConfig(str(dataset), str(fixed), shards=2, capacity=50_000, run=RunOptions(progress=False))
    )
    metas = [json.loads(p.read_text()) for p in sorted((fixed / "portrait").glob("*.json"))]
    assert len({m["m"] for m in metas}) == 1 and all(m["fixed_capacity"] for m in metas)


def test_phrase_words_skip_cut_and_unindexable_words():
    assert phrase_words("ocessing the data_frame now wi") == ["the", "data", "frame", "now"]
    long = "x" * 41
    assert phrase_words(f"a b c {long} d e f g h") == ["d", "e", "f", "g"]
    assert phrase_words("---- ====") == []


def test_merge_ranges():
    assert merge_ranges([[5, 9], [0, 3], [2, 4], [9, 12]]) == [[0, 4], [5, 12]]


@pytest.mark.slow
def test_the_ray_executor_builds_the_same_index(dataset, index_dir, tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed")
    import ray

    try:
        build_index(
            IndexConfig(
                str(dataset),
                str(tmp_path / "ray"),
                shards=2,
                run=RunOptions(executor="ray", workers=2, progress=False),
            )
        )
    finally:
        ray.shutdown()
    for p in sorted((index_dir / "portrait").iterdir()):
        assert (tmp_path / "ray" / "portrait" / p.name).read_bytes() == p.read_bytes(), p.name
    assert (
        DatasetIndex(tmp_path / "ray").search("import")["total"]
        == DatasetIndex(index_dir).search("import")["total"]
    )


def test_a_killed_build_resumes_where_it_stopped(dataset, index_dir, tmp_path):
    """A task that finished keeps its completion marker and is skipped; one that did not is redone."""
    out = tmp_path / "resumed"
    build_index(IndexConfig(str(dataset), str(out), shards=2, run=RunOptions(progress=False)))
    (out / "index.json").unlink()  # as if killed before the summary: the rest of the pass is done
    marker = next((out / "logs" / "index" / "completions").iterdir())
    marker.unlink()  # and one task had not finished
    shard = f"{int(marker.name):05d}"
    (out / "portrait" / f"{shard}.json").unlink()
    kept = (out / "portrait" / f"{'00001' if shard == '00000' else '00000'}.bloom").stat().st_mtime_ns
    build_index(IndexConfig(str(dataset), str(out), shards=2, run=RunOptions(progress=False)))
    assert (out / "portrait" / f"{shard}.json").is_file()
    assert (out / "portrait" / f"{'00001' if shard == '00000' else '00000'}.bloom").stat().st_mtime_ns == kept
    for p in sorted((index_dir / "portrait").iterdir()):
        assert (out / "portrait" / p.name).read_bytes() == p.read_bytes(), p.name
