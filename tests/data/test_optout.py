from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from helpers import make_file
from stackcoder.data import fields as F
from stackcoder.data.optout import OptOutFilter, OptOutMatcher, load_optout, merge_optout
from stackcoder.data.readers.reader import RepositoryReader
from stackcoder.data.readers.sources import discover_sources
from stackcoder.data.step import mark_removed
from stackcoder.data.writer import DatasetWriter
from stackcoder.errors import UserError

REPOS = Path(__file__).parents[1] / "fixtures" / "repos"


def removed(step: OptOutFilter, *repo_names: str) -> list[str | None]:
    docs = [make_file("x = 1\n", repo_name=name) for name in repo_names]
    return [d.metadata.get(F.REMOVED_REASON) for d in step.run(iter(docs))]


def test_owner_and_repo_patterns():
    step = OptOutFilter(["octocat", "torvalds/linux"])
    assert removed(
        step, "octocat/hello-world", "octocat/spoon-knife", "torvalds/linux", "torvalds/subsurface"
    ) == [
        "opted_out",
        "opted_out",
        "opted_out",
        None,
    ]
    # an owner is a whole path segment, not a prefix
    assert removed(step, "octocat2/hello", "octo/cat", "linux/torvalds") == [None, None, None]
    assert step.stats["opted_out_repos"].total == 3 and step.stats["dropped_opted_out"].total == 3


def test_case_insensitive_like_github():
    step = OptOutFilter(["OctoCat", "Torvalds/Linux"])
    assert removed(step, "octocat/Hello-World", "OCTOCAT/x", "torvalds/LINUX", "Torvalds/linux-next") == [
        "opted_out",
        "opted_out",
        "opted_out",
        None,
    ]


def test_globs_per_segment():
    step = OptOutFilter(["acme-*", "bigcorp/test-?", "foo/[ab]*"])
    names = ["acme-labs/tool", "acme/tool", "bigcorp/test-1", "bigcorp/test-12", "foo/alpha", "foo/cat"]
    assert removed(step, *names) == ["opted_out", None, "opted_out", None, "opted_out", None]
    # '*' does not cross the '/': an owner glob never matches a repository part
    matcher = OptOutMatcher(["*/secret"])
    assert matcher.matches("anyone/secret") and not matcher.matches("anyone/secret-sauce")
    assert not OptOutMatcher(["a*b"]).matches("ab-owner/xb") and OptOutMatcher(["a*b"]).matches("axxb/y")


def test_list_files_comments_and_merge(tmp_path):
    path = tmp_path / "optout.txt"
    path.write_text("# requests received 2024-03\noctocat   # asked by mail\n\n  Torvalds/Linux\noctocat\n")
    assert load_optout(path) == ["octocat", "Torvalds/Linux", "octocat"]
    assert merge_optout(load_optout(path), ["zed/z", "OCTOCAT"]) == ["octocat", "torvalds/linux", "zed/z"]
    step = OptOutFilter(["zed"], files=[str(path)])
    assert step.patterns == ["octocat", "torvalds/linux", "zed"]
    assert removed(step, "zed/x", "torvalds/linux", "octocat/y", "ok/ok") == ["opted_out"] * 3 + [None]


@pytest.mark.parametrize(
    "line", ["octo cat", "a/b/c", "/repo", "owner/", "owner//repo", "owner/repo name", "ow:ner", "ünï/code"]
)
def test_bad_lines_name_file_and_line(tmp_path, line):
    path = tmp_path / "list.txt"
    path.write_text(f"# header\ngood/repo\n{line}\n")
    with pytest.raises(UserError, match=rf"{path}:3: .* is not an owner or owner/repo pattern"):
        load_optout(path)
    with pytest.raises(UserError, match="opt_out.owners_and_repos: .* is not an owner"):
        OptOutFilter([line])


def test_unreadable_list(tmp_path):
    with pytest.raises(UserError, match="cannot read it"):
        OptOutFilter(files=[str(tmp_path / "missing.txt")])


def test_empty_list_removes_nothing_and_step_pickles():
    assert removed(OptOutFilter(), "octocat/x") == [None]
    step = pickle.loads(pickle.dumps(OptOutFilter(["octocat"])))
    assert removed(step, "octocat/x") == ["opted_out"]


def test_already_removed_files_are_relabeled():
    step = OptOutFilter(["octocat"])
    binary = make_file("", path="logo.png", repo_name="octocat/site", src_encoding=None)
    mark_removed(binary, "ingest", "binary", "detail")
    other = make_file("", path="logo.png", repo_name="other/site", src_encoding=None)
    mark_removed(other, "ingest", "binary")
    out = list(step.run(iter([binary, other])))
    assert [(d.metadata[F.REMOVED_STAGE], d.metadata[F.REMOVED_REASON]) for d in out] == [
        ("opt_out", "opted_out"),
        ("ingest", "binary"),
    ]
    assert F.REMOVED_DETAIL not in binary.metadata
    assert step.stats["opted_out_already_removed"].total == 1 and step.stats["opted_out_repos"].total == 1


def test_nothing_of_an_opted_out_repository_is_written(tmp_path):
    # real repositories; go-isatty gets a binary file, which ingest removes before the opt-out step
    isatty = tmp_path / "go-isatty"
    shutil.copytree(REPOS / "go-isatty", isatty)
    (isatty / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
    metadata = tmp_path / "meta.jsonl"
    rows = [
        {"repo_name": "mattn/go-isatty", "source": str(isatty)},
        {"repo_name": "pallets/markupsafe", "source": str(REPOS / "MarkupSafe-2.1.5.tar.gz")},
    ]
    metadata.write_text("".join(json.dumps(r) + "\n" for r in rows))
    sources = discover_sources(
        [r["source"] for r in rows],
        repo_metadata=str(metadata),
        max_archive_bytes=10**9,
        max_archive_members=10**6,
    )
    optlist = tmp_path / "optout.txt"
    optlist.write_text("# test\nMATTN/go-*\n")
    steps = [
        RepositoryReader(sources),
        OptOutFilter(files=[str(optlist)]),
        DatasetWriter(str(tmp_path / "out" / "files"), str(tmp_path / "out" / "removed")),
    ]
    data = None
    for step in steps:
        data = step.run(data, rank=0)
    seen = list(data)
    opted = [d for d in seen if d.metadata[F.REPO_NAME] == "mattn/go-isatty"]
    assert len(opted) == 13 and {d.metadata[F.REMOVED_STAGE] for d in opted} == {"opt_out"}
    assert steps[1].stats["dropped_opted_out"].total == 12  # 12 live files + the relabeled binary
    assert steps[1].stats["opted_out_already_removed"].total == 1

    tables = [pq.read_table(p) for p in sorted((tmp_path / "out").rglob("*.parquet"))]
    names = {n for t in tables for n in t.column(F.REPO_NAME).to_pylist()}
    assert names == {"pallets/markupsafe"}
    paths = {p for t in tables for p in t.column(F.PATH).to_pylist()}
    assert "isatty_others.go" not in paths and "logo.png" not in paths
    contents = {c for t in tables for c in t.column(F.CONTENT).to_pylist()}
    assert not contents & {d.text for d in opted if d.text}


def test_steps_take_their_recipe_sections_with_the_same_defaults():
    from stackcoder.data.decontaminate import Decontaminator
    from stackcoder.data.malware import MalwareScanner
    from stackcoder.data.recipe import load_recipe

    recipe = load_recipe()
    built = Decontaminator(**recipe["decontamination"], benchmark_files={})
    default = Decontaminator()
    assert (
        built.trivial_solutions == default.trivial_solutions == recipe["decontamination"]["trivial_solutions"]
    )
    assert [n for n, _ in built.benchmark_paths] == [n for n, _ in default.benchmark_paths] == ["humaneval"]
    assert MalwareScanner(**recipe["malware"]).database == MalwareScanner().database == ""
    assert OptOutFilter(**recipe["opt_out"]).patterns == OptOutFilter().patterns == []


def test_user_patterns_name_people_not_repositories(tmp_path):
    # `user:login` opts a GitHub user out of the issue and pull-request parts (data/gharchive)
    path = tmp_path / "optout.txt"
    path.write_text("user:Jane-Doe   # her comments and PRs\nuser:bot-*\noctocat\n")
    patterns = merge_optout(load_optout(path))
    assert patterns == ["octocat", "user:bot-*", "user:jane-doe"]
    matcher = OptOutMatcher(patterns)
    assert matcher.matches_user("JANE-DOE") and matcher.matches_user("bot-runner")
    assert not matcher.matches_user("octocat") and not matcher.matches_user(None)
    assert not matcher.matches("jane-doe/project") and not matcher.matches("user/x")
    (tmp_path / "bad.txt").write_text("user:a b\n")
    with pytest.raises(UserError, match="user:login"):
        load_optout(tmp_path / "bad.txt")
