"""Issues from GHArchive events to training text (recipe.md §6), on GitHub's real payload shapes."""

from __future__ import annotations

import pytest

from data.gharchive.helpers import Stream, Thread, counters, run_gharchive
from stackcoder.data import fields as F
from stackcoder.data.gharchive.issue_bots import IssueBotFilter
from stackcoder.data.gharchive.issue_keep import IssueKeepFilter
from stackcoder.data.gharchive.issue_thread import IssueThreadBuilder
from stackcoder.data.step import is_removed

BODY = (
    "Running `tools sync --all` on a fresh checkout crashes with a KeyError in config.py. "
    "Steps: clone, run the command, see the traceback below. Expected: the sync finishes. "
    "Version 2.1.3 on Python 3.11, Debian 12."
)
REPLY = "I can reproduce it on macOS too; the `remote` key is missing when no config file exists yet."


def kept(docs):
    return {d.id: d for d in docs if not is_removed(d)}


def reasons(docs):
    return {d.id: d.metadata[F.REMOVED_REASON] for d in docs if is_removed(d)}


def test_issue_renders_in_the_recipe_format(tmp_path):
    s = Stream()
    t = Thread("octo-org/tools", 3, "jane-doe", "Crash on sync", BODY)
    s.issue_event(t, "opened")
    s.comment(t, "bob", REPLY + " Thanks @Jane-Doe for the report.", 1001)
    s.comment(t, "jane-doe", "Fixed in #4, thanks bob!", 1002)
    s.issue_event(t, "closed", actor="jane-doe")
    docs, _ = run_gharchive(tmp_path, s.events, "issues")
    doc = kept(docs)["octo-org/tools#3"]
    assert doc.text == (
        f"<issue_start>Title: Crash on sync\nusername_0: {BODY}"
        f"<issue_comment>username_1: {REPLY} Thanks @username_0 for the report."
        "<issue_comment>username_0: Fixed in #4, thanks username_1!<issue_closed><|endoftext|>"
    )
    assert doc.metadata[F.REPO_NAME] == "octo-org/tools" and doc.metadata["number"] == 3


def test_missing_opened_event_is_synthesised_from_the_issue_object(tmp_path):
    s = Stream()
    t = Thread("octo-org/tools", 5, "jane-doe", "Docs typo", BODY)
    s.comment(t, "bob", REPLY, 2001)  # the dumps start after the issue was opened
    docs, steps = run_gharchive(tmp_path, s.events, "issues")
    assert kept(docs)["octo-org/tools#5"].text.startswith(
        f"<issue_start>Title: Docs typo\nusername_0: {BODY}<issue_comment>username_1: {REPLY}"
    )
    assert counters(next(x for x in steps if isinstance(x, IssueThreadBuilder)))["opened_synthesized"] == 1


def test_edits_and_deletions_of_comments(tmp_path):
    s = Stream()
    t = Thread("octo-org/tools", 6, "jane-doe", "Crash on sync", BODY)
    s.issue_event(t, "opened")
    s.comment(t, "bob", "first version of the comment, with a typo in it", 3001)
    s.comment(t, "bob", REPLY, 3001, action="edited")
    s.comment(t, "carol", "spam spam spam spam spam spam spam", 3002)
    s.comment(t, "carol", "spam spam spam spam spam spam spam", 3002, action="deleted")
    s.issue_event(t, "labeled", actor="jane-doe")
    docs, _ = run_gharchive(tmp_path, s.events, "issues")
    text = kept(docs)["octo-org/tools#6"].text
    assert f"<issue_comment>username_1: {REPLY}<|endoftext|>" in text
    assert "typo in it" not in text and "spam" not in text


def test_bot_replies_go_with_their_trigger(tmp_path):
    s = Stream()
    t = Thread("octo-org/tools", 7, "jane-doe", "Crash on sync", BODY)
    s.issue_event(t, "opened")
    s.comment(t, "bob", REPLY, 4001)
    s.comment(t, "bob", "/retest", 4002)
    s.comment(t, "k8s-ci-robot", "@bob: The following tests failed: pull-unit", 4003)
    s.comment(t, "carol", "Let's ask the stale bot: @stale-helper please keep this open", 4004)
    s.comment(t, "stale-helper", "This issue was marked as keep-open.", 4005, actor_type="Bot")
    s.comment(t, "codecov-io", "Coverage 81% (+0.2%)", 4006)
    s.issue_event(t, "closed", actor="github-actions[bot]")
    bot_opened = Thread("octo-org/tools", 8, "dependabot[bot]", "Bump lodash", BODY)
    s.issue_event(bot_opened, "opened")
    s.comment(bot_opened, "bob", REPLY, 4010)
    docs, steps = run_gharchive(tmp_path, s.events, "issues")
    text = kept(docs)["octo-org/tools#7"].text
    assert text == (
        f"<issue_start>Title: Crash on sync\nusername_0: {BODY}"
        f"<issue_comment>username_1: {REPLY}<|endoftext|>"
    )
    assert reasons(docs) == {"octo-org/tools#8": "opened_by_bot"}
    bot_step = counters(next(x for x in steps if isinstance(x, IssueBotFilter)))
    assert bot_step["bot_entries"] == 4 and bot_step["bot_trigger_comments"] == 2


@pytest.mark.parametrize(
    "comments, expected",
    [
        ([], "too_short"),  # one author, 120 characters
        ([("bob", "x" * 40)], None),  # two authors, 200+ characters
        ([("jane-doe", "y" * 7000)], "single_author_too_long"),
        ([("jane-doe", "more detail " * 3)] * 10, "single_author_too_many_events"),  # 11 events
        ([("jane-doe", "more detail " * 3)] * 9, None),  # 10 events, one author
    ],
)
def test_keep_rule(tmp_path, comments, expected):
    s = Stream()
    t = Thread("octo-org/tools", 9, "jane-doe", "Crash", "z" * 120 + ("w" * 100 if comments else ""))
    s.issue_event(t, "opened")
    for i, (who, text) in enumerate(comments):
        s.comment(t, who, text, 5000 + i)
    docs, steps = run_gharchive(tmp_path, s.events, "issues")
    assert reasons(docs).get("octo-org/tools#9") == expected
    step = counters(next(x for x in steps if isinstance(x, IssueKeepFilter)))
    assert step["total"] == 1 and step.get(f"dropped_{expected}", 0) == (1 if expected else 0)


def test_email_reply_and_long_comment_in_the_text(tmp_path):
    s = Stream()
    t = Thread("octo-org/tools", 10, "jane-doe", "Crash on sync", BODY)
    s.issue_event(t, "opened")
    reply = "Works now.\n\nOn Tue, Mar 7, 2023 at 4:12 PM Jane Doe <notifications@github.com> wrote:\n> old\n"
    s.comment(t, "bob", reply + "> Reply to this email directly, view it on GitHub\n", 6001)
    s.comment(t, "bob", "\n".join(f"log line {i}" for i in range(90)), 6002)
    docs, _ = run_gharchive(tmp_path, s.events, "issues")
    text = kept(docs)["octo-org/tools#10"].text
    assert "<issue_comment>username_1: Works now.<issue_comment>" in text
    assert "log line 59\n[Truncated]\nlog line 70\n" in text and "log line 60" not in text


def test_opt_out_of_repositories_owners_and_users(tmp_path):
    s = Stream()
    for repo in ("octo-org/tools", "octo-org/secret", "private-owner/x"):
        s.issue_event(Thread(repo, 1, "jane-doe", "Crash on sync", BODY), "opened")
        s.comment(Thread(repo, 1, "jane-doe", "Crash on sync", BODY), "bob", REPLY, hash(repo) % 10_000)
    mine = Thread("octo-org/tools", 2, "optout-user", "My own issue", BODY)
    s.issue_event(mine, "opened")
    s.comment(mine, "bob", REPLY, 7001)
    other = Thread("octo-org/tools", 3, "jane-doe", "Crash on sync", BODY)
    s.issue_event(other, "opened")
    s.comment(other, "Optout-User", "a comment that must not appear anywhere at all", 7002)
    s.comment(other, "bob", REPLY, 7003)
    docs, _ = run_gharchive(
        tmp_path, s.events, "issues", opt_out=["octo-org/secret", "private-owner", "user:optout-user"]
    )
    assert sorted(d.id for d in docs) == ["octo-org/tools#1", "octo-org/tools#3"]
    assert "must not appear" not in kept(docs)["octo-org/tools#3"].text
    # nothing of them reached the work files either
    work = "".join(p.read_text() for p in (tmp_path / "work").rglob("*.jsonl"))
    assert "octo-org/secret" not in work and "private-owner" not in work and "ptout-user" not in work.lower()


def test_same_text_however_the_input_is_split(tmp_path):
    s = Stream()
    for n in range(1, 13):
        t = Thread(f"org{n % 4}/repo", n, f"user{n}", f"Issue number {n}", BODY)
        s.issue_event(t, "opened")
        s.comment(t, f"user{n + 1}", REPLY, 8000 + n)
        if n % 3 == 0:
            s.issue_event(t, "closed", actor=f"user{n}")
    one, _ = run_gharchive(tmp_path / "a", s.events, "issues")
    many, _ = run_gharchive(tmp_path / "b", s.events, "issues", files=3, buckets=4)
    assert {d.id: d.text for d in one} == {d.id: d.text for d in many}
    assert len(kept(one)) == 12
