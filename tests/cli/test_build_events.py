"""`stackcoder build SOURCE --events DUMP`: files, issues and pull requests in one build (recipe.md §6)."""

from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq
import pytest

from data.gharchive.helpers import Stream, Thread, write_dump
from data.gharchive.test_issues import BODY, REPLY
from data.gharchive.test_pull_requests import pr_stream, repo  # noqa: F401 (fixture)
from stackcoder.cli import main
from stackcoder.data.report import format_summary


def rows(folder):
    return [r for p in sorted(folder.glob("*.parquet")) for r in pq.read_table(p).to_pylist()]


@pytest.mark.slow
def test_build_with_events_and_git_sources(tmp_path, repo, capsys):  # noqa: F811
    repos = tmp_path / "repos"
    repos.mkdir()
    shutil.copytree(repo["path"], repos / "tools")  # its origin remote names it octo-org/tools
    s = Stream()
    t = Thread("octo-org/tools", 3, "jane-doe", "Crash on sync", BODY)
    s.issue_event(t, "opened")
    s.comment(t, "bob", REPLY, 101)
    prs, _ = pr_stream(repo, number=12)
    dumps = tmp_path / "gharchive"
    dumps.mkdir()
    write_dump(dumps / "2023-03-01-9.json.gz", s.events, [b"{broken"])
    write_dump(dumps / "2023-03-01-10.json.gz", prs.events)
    recipe = tmp_path / "recipe.toml"
    recipe.write_text("[pull_requests]\nsample_per_repository = false\n")
    out = tmp_path / "out"
    args = [str(repos), "--repos-dir", "--events", str(dumps), "-o", str(out), "--recipe", str(recipe), "-q"]
    assert main(["build", *args]) == 0
    printed = capsys.readouterr().out
    assert f"issues:    {out / 'issues'}" in printed
    assert {r["path"] for r in rows(out / "files")} >= {"textwrap.py", "shlex.py"}
    (issue,) = rows(out / "issues")
    assert (issue["repo_name"], issue["number"], issue["metadata"]) == ("octo-org/tools", 3, None)
    (pr,) = rows(out / "pull_requests")
    assert (pr["number"], pr["path"], json.loads(pr["metadata"])) == (12, "pull/12", {"merged": True})
    assert "<pr_base><pr_file>shlex.py<pr_base_code>" in pr["text"]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["events"]["skipped"] == {"malformed_json": 1} and stats["events"]["files"] == 2
    assert stats["parts"]["pull_requests"]["totals"]["files_kept"] == 1
    assert "issue/PR events, 0 opted out; skipped: malformed_json 1" in format_summary(stats)

    # events alone: the PR's commits are in no SOURCE now
    alone = tmp_path / "alone"
    assert main(["build", "--events", str(dumps), "-o", str(alone), "--recipe", str(recipe), "-q"]) == 0
    assert rows(alone / "files") == [] and len(rows(alone / "issues")) == 1
    (gone,) = rows(alone / "removed" / "pull_requests")
    assert (gone["removed_stage"], gone["removed_reason"]) == ("pr_contents", "no_repository")


def test_events_need_files(tmp_path, capsys):
    assert main(["build", "--events", str(tmp_path / "nope.json.gz"), "-o", str(tmp_path / "o")]) != 0
    assert "--events" in capsys.readouterr().err
    assert main(["build", "-o", str(tmp_path / "o")]) != 0
    assert "no SOURCE" in capsys.readouterr().err
