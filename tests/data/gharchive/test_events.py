"""Reading GHArchive dumps: GitHub's real payloads in the Events-API envelope; damage is counted."""

from __future__ import annotations

import gzip

import orjson

from data.gharchive.helpers import Stream, Thread, counters, envelope, example, run_chain, write_dump
from stackcoder.data.gharchive.events import ISSUE_KIND, PR_KIND, normalize
from stackcoder.data.gharchive.reader import EVENT, EventReader


def test_each_type_of_real_payload_normalizes():
    issue = normalize(envelope("issues", example("issues", "opened"), 1, "2019-05-15T15:20:33Z"))
    assert issue["type"] == "IssuesEvent" and issue["action"] == "opened" and issue["kind"] == ISSUE_KIND
    assert (issue["repo"], issue["number"], issue["author"]) == ("Codertocat/Hello-World", 1, "Codertocat")
    assert issue["title"] == "Spelling error in the README file" and issue["at"] == "2019-05-15T15:20:33Z"

    comment = normalize(
        envelope("issue_comment", example("issue_comment", "created"), 2, "2019-05-15T15:21:00Z")
    )
    assert (
        comment["comment_id"] == 492700400
        and comment["text"] == "You are totally right! I'll get this fixed right away."
    )

    pr = normalize(envelope("pull_request", example("pull_request", "opened"), 3, "2019-05-15T15:20:33Z"))
    assert (
        pr["kind"] == PR_KIND
        and pr["number"] == 2
        and pr["title"] == "Update the README with new information."
    )
    assert pr["base_sha"] == "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
    assert pr["head_sha"] == "ec26c3e57ca3a959ca5aad62de7213c562f8c821" and pr["merged"] is False

    review = normalize(envelope("pull_request_review", example("pull_request_review", "submitted"), 4, "x"))
    assert review["review_id"] == 237895671 and review["state"] == "commented"

    rc = normalize(
        envelope("pull_request_review_comment", example("pull_request_review_comment", "created"), 5, "x")
    )
    assert rc["path"] == "README.md" and rc["diff_hunk"].startswith("@@ -1 +1 @@") and rc["position"] == 1
    assert rc["review_id"] == 237895671 and rc["in_reply_to"] is None


def test_a_pr_conversation_comment_goes_with_pull_requests():
    t = Thread("octo-org/tools", 7, "alice", "Add a flag", "body")
    event = Stream().comment(t, "bob", "Looks good to me overall", 11, pr=True)
    assert normalize(event)["kind"] == PR_KIND


def test_damage_is_counted_never_raised(tmp_path):
    stream = Stream()
    t = Thread("octo-org/tools", 3, "alice", "Crash on start", "It crashes.")
    stream.issue_event(t, "opened")
    stream.comment(t, "bob", "Same here with version 2.1 on Linux.", 100)
    watch = {"id": "1", "type": "WatchEvent", "actor": {"login": "x"}, "repo": {"name": "a/b"}, "payload": {}}
    no_issue = envelope("issues", example("issues", "opened"), 9, "x")
    del no_issue["payload"]["issue"]
    lines = [b"{not json", orjson.dumps(watch), b'{"hello": "world"}', orjson.dumps(no_issue), b"[1, 2]"]
    good = write_dump(tmp_path / "2023-03-01-9.json.gz", stream.events, lines)
    # an interrupted download: the gzip stream stops in the middle (the first event survives)
    raw = gzip.compress(b"".join(orjson.dumps(e) + b"\n" for e in stream.events) * 50)
    (tmp_path / "cut.json.gz").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "plain.json.gz").write_bytes(b'{"id": "1"}\n')

    reader = EventReader([str(good), str(tmp_path / "cut.json.gz"), str(tmp_path / "plain.json.gz")])
    docs = run_chain([reader])
    stats = counters(reader)
    assert stats["skipped_malformed_json"] == 1
    assert stats["skipped_other_event_type"] == 1
    assert stats["skipped_not_an_event"] == 2  # an object without envelope, a JSON array
    assert stats["skipped_incomplete_payload"] == 1
    assert stats["skipped_truncated_gzip"] == 1 and stats["skipped_not_gzip"] == 1
    assert stats["files"] == 3
    good_events = [d for d in docs if d.metadata[EVENT]["repo"] == "octo-org/tools"]
    assert len(good_events) >= 2 + 2  # the whole first file and at least one copy from the cut file
    assert stats["events_IssuesEvent"] + stats["events_IssueCommentEvent"] == len(docs)
    assert stats["input_bytes"] > 0 and stats["lines"] >= 7


def test_tasks_share_files_by_index(tmp_path):
    stream = Stream()
    for n in range(4):
        stream.issue_event(Thread("a/b", n + 1, "alice", "t", "b"), "opened")
    files = [str(write_dump(tmp_path / f"{i}.json.gz", [e])) for i, e in enumerate(stream.events)]
    seen = [
        sorted(d.metadata[EVENT]["number"] for d in run_chain([EventReader(files)], r, 2)) for r in (0, 1)
    ]
    assert seen == [[1, 3], [2, 4]]
