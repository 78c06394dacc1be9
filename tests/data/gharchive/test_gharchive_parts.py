"""Issues and pull requests through the whole build machinery (recipe.md §6): the events pass, then
each part's intake, dedup, PII, decontamination and writer passes, as ``stackcoder build`` runs them."""

from __future__ import annotations

import orjson
import pyarrow.parquet as pq
import pytest

from data.gharchive.helpers import Stream, Thread, write_dump
from data.gharchive.test_issues import BODY, REPLY
from data.gharchive.test_pull_requests import pr_stream, repo  # noqa: F401 (fixture)
from stackcoder.data.decontaminate import load_benchmark
from stackcoder.data.executor import run_passes
from stackcoder.data.gharchive.passes import events_stats, plan_gharchive
from stackcoder.data.options import RunOptions
from stackcoder.data.parts import part_stats
from stackcoder.data.recipe import load_recipe


def rows(folder):
    return [r for p in sorted(folder.glob("*.parquet")) for r in pq.read_table(p).to_pylist()]


@pytest.mark.slow
def test_issues_and_prs_end_to_end(tmp_path, repo):  # noqa: F811
    s = Stream()
    leak = Thread(
        "octo-org/tools", 3, "jane-doe", "Crash on sync", BODY + " Mail me at jane.doe@acme-corp.io."
    )
    s.issue_event(leak, "opened")
    s.comment(leak, "bob", REPLY, 101)
    copy = Thread(
        "octo-org/tools", 4, "carol", "Crash on sync again", BODY + " Mail me at jane.doe@acme-corp.io."
    )
    s.issue_event(copy, "opened")
    s.comment(copy, "bob", REPLY, 102)
    prompt = load_benchmark("humaneval")[0][1]
    contaminated = Thread("octo-org/tools", 5, "dave", "Homework help", "Please solve:\n" + prompt)
    s.issue_event(contaminated, "opened")
    s.comment(contaminated, "erin", REPLY, 103)
    short = Thread("octo-org/tools", 6, "frank", "Hi", "hello")
    s.issue_event(short, "opened")
    prs, _ = pr_stream(repo, number=12)
    events = sorted(s.events + prs.events, key=lambda e: (e["created_at"], e["id"]))
    dump = write_dump(tmp_path / "2023-03-01-9.json.gz", events, [b"{broken", b'{"type": "PushEvent"}'])

    recipe = load_recipe()
    recipe["pull_requests"]["sample_per_repository"] = False
    root = tmp_path / "out"
    ev, parts = plan_gharchive(recipe, root, [str(dump)], {"octo-org/tools": repo["path"]}, opt_out=[])
    assert run_passes(
        [ev, *(p for part in parts for p in part.passes)],
        logs=root / "logs",
        options=RunOptions(workers=1, progress=False),
    )

    issues = {r["id"]: r for r in rows(root / "issues")}
    assert set(issues) == {"octo-org/tools#3"}
    kept = issues["octo-org/tools#3"]
    assert kept["repo_name"] == "octo-org/tools" and kept["path"] == "issues/3"
    assert kept["number"] == 3 and kept["metadata"] is None  # the number is a column of its own
    assert "<EMAIL>" in kept["text"] and "jane.doe@acme-corp.io" not in kept["text"]
    assert kept["text"].startswith("<issue_start>Title: Crash on sync\nusername_0: ")
    removed = {r["id"]: (r["removed_stage"], r["removed_reason"]) for r in rows(root / "removed" / "issues")}
    assert removed["octo-org/tools#6"] == ("issue_filter", "too_short")
    assert removed["octo-org/tools#5"][0] == "decontamination"
    assert removed["octo-org/tools#4"][0] == "near_dedup"  # the same report again, by another author

    (pr,) = rows(root / "pull_requests")
    assert pr["id"] == "octo-org/tools#12" and pr["path"] == "pull/12"
    assert pr["gha_license_id"] == "MIT" and pr["license_type"] == "permissive"
    assert pr["text"].startswith("<pr>Title: ") and pr["text"].endswith("<pr_is_merged>True<|endoftext|>")

    stats = events_stats(root, ev)
    assert stats["skipped"] == {"malformed_json": 1, "not_an_event": 1} and stats["files"] == 1
    assert stats["events"]["PullRequestEvent"] == 3 and stats["written"]["issues"] == 7
    funnel = part_stats(parts[0])
    assert funnel["totals"]["files_seen"] == 4 and funnel["totals"]["files_kept"] == 1
    by_stage = {row["stage"]: row for row in funnel["stages"]}
    assert by_stage["issue_filter"]["removed"]["too_short"]["files"] == 1
    assert by_stage["issue_events"]["files_in"] == 4 and by_stage["issue_render"]["files_out"] == 3
    work_text = b"".join(p.read_bytes() for p in (root / "work" / "events").rglob("*.jsonl"))
    assert orjson.loads(work_text.split(b"\n")[0])["repo"] == "octo-org/tools"
