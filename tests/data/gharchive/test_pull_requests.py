"""Pull requests from GHArchive events and a real git repository to training text (recipe.md §6).

The repository holds two real source files (Python's own ``textwrap.py`` and ``shlex.py``); the
PR's pushes change them as a contributor would, and the events around it are GitHub's payload
examples, wrapped as GHArchive stores them.
"""

from __future__ import annotations

import re
import shlex
import textwrap
from pathlib import Path

import pytest
from datatrove.data import Document

from data.gharchive.helpers import Stream, Thread, commit_files, counters, git, run_gharchive
from stackcoder.data import fields as F
from stackcoder.data.gharchive.pr_contents import PullRequestContents
from stackcoder.data.gharchive.pr_sampling import RepositorySampler, keep_probability
from stackcoder.data.recipe import load_recipe
from stackcoder.data.step import is_removed

TEXTWRAP = Path(textwrap.__file__).read_text()
SHLEX = Path(shlex.__file__).read_text()
DESC = (
    "Long hyphenated words were split in the middle of a compound. This makes hyphen breaking "
    "opt-in and lets the shlex lexer treat ';' as a comment character, as discussed in #11."
)
REVIEW_TEXT = "Could you keep the old default here? Changing it breaks callers that rely on it."
TOKENS = re.compile(r"(<[a-z_|]+>)")


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> dict[str, str]:
    """octo-org/tools with a base commit and two pushes of a PR branch; the shas by name."""
    path = tmp_path_factory.mktemp("repos") / "tools"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "remote", "add", "origin", "https://github.com/octo-org/tools.git")
    base = commit_files(path, {"textwrap.py": TEXTWRAP, "shlex.py": SHLEX, "logo.png": "\0PNG"}, "base")
    git(path, "checkout", "-q", "-b", "pr")
    head1 = commit_files(
        path,
        {
            "textwrap.py": TEXTWRAP.replace("break_on_hyphens=True", "break_on_hyphens=False").replace(
                "def dedent(text):", "# Dedent keeps tabs and spaces apart.\ndef dedent(text):"
            ),
            "shlex.py": SHLEX.replace("self.commenters = '#'", "self.commenters = '#;'"),
            "logo.png": "\0PNG2",  # binary: never shown
            "NEWS.md": "new file: not in the base, never shown\n",
        },
        "wrap at hyphens only on request",
    )
    head2_text = (
        (path / "textwrap.py")
        .read_text()
        .replace("break_on_hyphens=False", "break_on_hyphens=True")
        .replace("        self.max_lines = max_lines", "        self.max_lines = max_lines  # None: no limit")
    )
    head2 = commit_files(path, {"textwrap.py": head2_text}, "keep the old default")
    git(path, "checkout", "-q", "main")
    hunk = git(path, "diff", base, head1, "--", "textwrap.py").split("\n")
    start = next(i for i, line in enumerate(hunk) if line.startswith("@@"))
    plus = next(i for i in range(start, len(hunk)) if hunk[i].startswith("+"))
    return {
        "path": str(path),
        "base": base,
        "head1": head1,
        "head2": head2,
        "diff_hunk": "\n".join(hunk[start : plus + 1]),
        "position": str(plus - start),
    }


def pr_stream(repo: dict[str, str], number: int = 12, **overrides) -> tuple[Stream, Thread]:
    s = Stream()
    fields = dict(author="jane-doe", title="Wrap long words at hyphens only on request", body=DESC)
    t = Thread("octo-org/tools", number, base=repo["base"], head=repo["head1"], **(fields | overrides))
    s.pr_event(t, "opened")
    s.review_comment(
        t,
        "bob",
        REVIEW_TEXT + " @jane-doe",
        5001,
        "textwrap.py",
        repo["diff_hunk"],
        int(repo["position"]),
        review_id=900,
    )
    s.review(t, "bob", "A few small things, otherwise fine.", "changes_requested", 900)
    s.comment(t, "jane-doe", "Addressed the review in the new push, please take another look.", 5002, pr=True)
    t.head = repo["head2"]
    s.pr_event(t, "synchronize")
    s.review_comment(
        t,
        "jane-doe",
        "Kept the default as you asked, see this line now.",
        5003,
        "textwrap.py",
        repo["diff_hunk"],
        int(repo["position"]),
        review_id=901,
        in_reply_to=5001,
    )
    s.review(t, "bob", "Looks good now, thanks!", "approved", 902)
    s.pr_event(t, "closed", actor="bob", merged=True)
    return s, t


def no_sampling() -> dict:
    recipe = load_recipe()
    recipe["pull_requests"]["sample_per_repository"] = False
    return recipe


def render(tmp_path, events, repo, **kw):
    """Without per-repository sampling unless ``recipe`` says otherwise: a test sees every PR."""
    kw.setdefault("recipe", no_sampling())
    docs, steps = run_gharchive(
        tmp_path, events, "pull_requests", repositories={"octo-org/tools": repo["path"]}, **kw
    )
    return docs, steps


def segments(text: str) -> list[str]:
    return [p for p in TOKENS.split(text) if p]


def check_hunk(hunk: str, old: list[str], new: list[str], start: int) -> int:
    """The hunk's lines agree with the files (numbered from ``start``); its leading context size."""
    header, *lines = hunk.split("\n")
    a, b = (int(x.split(",")[0]) for x in re.match(r"@@ -(\S+) \+(\S+) @@", header).groups())
    i, j = start + a - 1, start + b - 1
    for line in lines:
        tag, body = line[0], line[1:]
        if tag in " -":
            assert old[i] == body
            i += 1
        if tag in " +":
            assert new[j] == body
            j += 1
    return next(k for k, line in enumerate(lines) if line[0] != " ")


def test_pr_renders_in_the_recipe_format(tmp_path, repo):
    s, _ = pr_stream(repo)
    docs, _ = render(tmp_path, s.events, repo)
    (doc,) = docs
    assert not is_removed(doc), doc.metadata.get(F.REMOVED_REASON)
    parts = segments(doc.text)
    assert parts[:8] == [
        "<pr>",
        f"Title: Wrap long words at hyphens only on request\nusername_0: {DESC}",
        "<pr_status>",
        "opened",
        "<repo_name>",
        "octo-org/tools",
        "<pr_base>",
        "<pr_file>",
    ]
    tokens = [p for p in parts if TOKENS.fullmatch(p)]
    # base: the two files present in both commits (not the binary, not the new file), then the first diff
    base_files = [parts[i + 1] for i, p in enumerate(parts) if p == "<pr_file>"][:2]
    assert base_files == ["shlex.py", "textwrap.py"] and "NEWS.md" not in doc.text and "PNG" not in doc.text
    order = [
        t for t in tokens if t in ("<pr_diff>", "<pr_review_comment>", "<pr_review>", "<pr_comment>", "<pr>")
    ]
    assert order == [
        "<pr>",
        "<pr_diff>",  # opened, first push
        "<pr_review_comment>",
        "<pr_comment>",  # bob's review comment (its text follows <pr_comment>)
        "<pr_review>",
        "<pr_comment>",  # the review, jane's answer
        "<pr_diff>",  # the second push, shown before the next PR-side entry
        "<pr_review_comment>",
        "<pr_comment>",
        "<pr_review>",
        "<pr>",
    ]
    assert (
        f"<pr_review_comment><pr_event_id>5001<pr_in_reply_to_review_id>900<pr_file>textwrap.py"
        f"<pr_diff_hunk_comment_line>{repo['position']}<pr_diff_hunk>@@" in doc.text
    )
    assert f"<pr_comment>username_1: {REVIEW_TEXT} @username_0<pr_review>" in doc.text
    assert "<pr_review>username_1: A few small things, otherwise fine.<pr_event_id>900" in doc.text
    assert "<pr_review_state>changes_requested<pr_comment>username_0: Addressed the review" in doc.text
    assert (
        "<pr_event_id>5003<pr_in_reply_to_review_id>901<pr_in_reply_to_comment_id>5001<pr_file>" in doc.text
    )
    assert (
        "<pr_review_state>approved<pr>username_1<pr_status>closed<pr_is_merged>True<|endoftext|>" in doc.text
    )
    assert "jane-doe" not in doc.text and "bob" not in doc.text
    assert doc.metadata[F.REPO_NAME] == "octo-org/tools" and doc.metadata["number"] == 12


def test_base_windows_and_hunks_match_the_repository(tmp_path, repo):
    s, _ = pr_stream(repo)
    (doc,) = render(tmp_path, s.events, repo)[0]
    parts = segments(doc.text)
    files = {"textwrap.py": TEXTWRAP, "shlex.py": SHLEX}
    heads = {"textwrap.py": [], "shlex.py": []}
    for head in (repo["head1"], repo["head2"]):
        for name in heads:
            heads[name].append(git(Path(repo["path"]), "show", f"{head}:{name}").split("\n"))
    windows = {}
    for i, p in enumerate(parts):
        if p == "<pr_base_code>":
            name, code = parts[i - 1], parts[i + 1]
            old = files[name].split("\n")
            starts = [k for k in range(len(old)) if "\n".join(old[k : k + code.count("\n") + 1]) == code]
            assert len(starts) == 1, "a base window is one contiguous slice of the base file"
            windows[name] = starts[0]
    assert set(windows) == {"shlex.py", "textwrap.py"}
    diffs = [i for i, p in enumerate(parts) if p == "<pr_diff>"]
    for n, d in enumerate(diffs):
        end = diffs[n + 1] if n + 1 < len(diffs) else len(parts)
        name = None
        for i in range(d, end):
            if parts[i] == "<pr_file>":
                name = parts[i + 1]
            elif parts[i] == "<pr_diff_hunk>" and parts[i - 2] != "<pr_diff_hunk_comment_line>":
                old, new = files[name].split("\n"), heads[name][n]
                context = check_hunk(parts[i + 1], old, new, windows[name])
                assert 3 <= context <= 9
    # each push is diffed against the base: the second diff still shows shlex.py, and the new comment
    second = "".join(parts[diffs[1] :]).split("<pr_review_comment>")[0]
    assert (
        len(diffs) == 2 and "shlex.py" in second and "+        self.max_lines = max_lines  # None" in second
    )


def test_same_input_same_text_however_split(tmp_path, repo):
    events = []
    for n in range(20, 26):
        s, _ = pr_stream(repo, number=n)
        events += s.events
    events.sort(key=lambda e: (e["created_at"], e["id"]))
    one = {d.id: d.text for d in render(tmp_path / "a", events, repo, recipe=load_recipe())[0]}
    again = {
        d.id: d.text
        for d in render(tmp_path / "b", events, repo, recipe=load_recipe(), files=3, buckets=2)[0]
    }
    assert one == again and len(one) == 6
    kept = [t for t in one.values() if t]
    assert len(kept) >= 3 and len(set(kept)) == len(kept)  # drawn per PR: windows and contexts differ
    recipe = load_recipe()
    recipe["pull_requests"]["seed"] = 1
    other = {d.id: d.text for d in render(tmp_path / "c", events, repo, recipe=recipe)[0]}
    assert other != one


def test_missing_repository_or_commits_is_a_reason(tmp_path, repo):
    s, _ = pr_stream(repo, number=30)
    gone, _ = pr_stream(repo, number=31, head_repo="someone/fork")
    for e in gone.events:
        if "pull_request" in e["payload"]:
            e["payload"]["pull_request"]["head"]["sha"] = "0" * 40
    elsewhere, _ = pr_stream(repo, number=32)
    for e in elsewhere.events:
        e["repo"]["name"] = "octo-org/other"
        if "pull_request" in e["payload"]:
            e["payload"]["pull_request"]["base"]["repo"]["full_name"] = "octo-org/other"
            e["payload"]["pull_request"]["head"]["repo"]["full_name"] = "octo-org/other"
    docs, steps = render(tmp_path, s.events + gone.events + elsewhere.events, repo)
    got = {d.id: d.metadata.get(F.REMOVED_REASON) for d in docs}
    assert got == {
        "octo-org/tools#30": None,
        "octo-org/tools#31": "commits_missing",
        "octo-org/other#32": "no_repository",
    }
    contents = counters(next(x for x in steps if isinstance(x, PullRequestContents)))
    assert contents["dropped_commits_missing"] == 1 and contents["dropped_no_repository"] == 1


def _edit(events, fn):
    for e in events:
        fn(e)
    return events


@pytest.mark.parametrize(
    "change, reason",
    [
        (dict(author="renovate[bot]"), "bot_opened"),
        (dict(body="<!-- describe the change -->"), "empty_description"),
        (dict(title="Release 2.0"), "title_excluded_word"),
        (dict(title="Fix"), "title_too_short"),
        (dict(license="GPL-3.0-only"), "non_permissive_license"),
        (dict(license="NOASSERTION"), None),
        ("no_reviews", "no_human_activity"),
        ("not_merged", "not_merged_or_approved"),
        ("rebased", "base_changed"),
    ],
)
def test_filters(tmp_path, repo, change, reason):
    if isinstance(change, dict):
        s, _ = pr_stream(repo, number=40, **change)
        events = s.events
    else:
        s, _ = pr_stream(repo, number=40)
        events = s.events
        if change == "no_reviews":
            events = [e for e in events if e["type"] == "PullRequestEvent"]
        elif change == "not_merged":
            events = [e for e in events if e["payload"].get("review", {}).get("state") != "approved"]
            events[-1]["payload"]["pull_request"]["merged"] = False
            events[-1]["payload"]["pull_request"]["merged_at"] = None
        elif change == "rebased":
            events[4]["payload"]["pull_request"]["base"]["sha"] = repo["head1"]
            events = [
                e for e in events if e["type"] != "PullRequestEvent" or e["payload"]["action"] != "closed"
            ]
    (doc,) = render(tmp_path, events, repo)[0]
    assert doc.metadata.get(F.REMOVED_REASON) == reason


def test_bot_comments_and_their_triggers_leave_the_pr(tmp_path, repo):
    s, t = pr_stream(repo, number=50)
    s.comment(t, "jane-doe", "/benchmark please run the suite", 7001, pr=True)
    s.comment(t, "perf-bot", "Benchmark finished: 3% faster on wrap()", 7002, pr=True)
    (doc,) = render(tmp_path, s.events, repo)[0]
    assert "/benchmark" not in doc.text and "Benchmark finished" not in doc.text and not is_removed(doc)


def test_repository_sampling_curve_and_draws():
    assert keep_probability(1) == pytest.approx(0.8)
    assert keep_probability(1000) == pytest.approx(0.1007)
    assert keep_probability(2000) == pytest.approx(0.05)
    docs = [Document("", f"big#{n}", metadata={F.REPO_NAME: "a/big", "number": n}) for n in range(1500)]
    docs += [Document("", f"small#{n}", metadata={F.REPO_NAME: "b/small", "number": n}) for n in range(10)]
    step = RepositorySampler(seed=0)
    out = list(step.run(iter(docs)))
    big = sum(1 for d in out if d.id.startswith("big") and not is_removed(d))
    assert abs(big - 100) < 30  # 100/n of 1,500
    assert {d.metadata.get(F.REMOVED_REASON) for d in out} == {None, "sampled_out"}
    again = [d.metadata.get(F.REMOVED_REASON) for d in RepositorySampler(seed=0).run(iter(docs[::-1]))][::-1]
    assert again == [d.metadata.get(F.REMOVED_REASON) for d in out]  # per PR, not per position


def test_opt_out_of_pull_requests(tmp_path, repo):
    s, t = pr_stream(repo, number=60)  # bob reviews and merges; carol comments
    s.comment(t, "carol", "I tested this branch on my machine and it works as expected.", 8001, pr=True)
    theirs, _ = pr_stream(repo, number=61, author="mallory")
    fork, _ = pr_stream(repo, number=62, head_repo="forker/tools")
    docs, _ = render(
        tmp_path,
        s.events + theirs.events + fork.events,
        repo,
        opt_out=["user:carol", "user:mallory", "forker"],
    )
    # mallory's PR never reaches a thread; the fork's PR is a thread (its comments do not name the
    # fork) removed at stage opt_out, which no writer writes
    got = {d.id: d.metadata.get(F.REMOVED_STAGE) for d in docs}
    assert got == {"octo-org/tools#60": None, "octo-org/tools#62": "opt_out"}
    assert "I tested this branch" not in docs[0].text
    work = "".join(p.read_text() for p in (tmp_path / "work").rglob("*.jsonl"))
    assert "forker" not in work and "mallory" not in work and "carol" not in work
