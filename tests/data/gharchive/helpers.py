"""Real GitHub event shapes for the GHArchive tests: GitHub's webhook payload examples
(tests/fixtures/gharchive) wrapped in the Events-API envelope GHArchive stores, with the fields a
scenario needs (repository, number, people, texts, commits) set on a copy."""

from __future__ import annotations

import copy
import functools
import gzip
import json
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

FIXTURE = Path(__file__).parents[2] / "fixtures" / "gharchive" / "webhook-examples.json.gz"
TYPES = {
    "issues": "IssuesEvent",
    "issue_comment": "IssueCommentEvent",
    "pull_request": "PullRequestEvent",
    "pull_request_review": "PullRequestReviewEvent",
    "pull_request_review_comment": "PullRequestReviewCommentEvent",
}
_NOT_IN_EVENTS = ("repository", "sender", "installation", "organization", "enterprise")


@functools.cache
def examples() -> dict[tuple[str, str], dict]:
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return {(r["webhook"], r["payload"]["action"]): r["payload"] for r in rows}


def example(webhook: str, action: str) -> dict:
    return copy.deepcopy(examples()[(webhook, action)])


def envelope(webhook: str, payload: dict, event_id: int, created_at: str) -> dict:
    """An Events-API event as in a GHArchive dump, from a webhook payload."""
    sender, repo = payload["sender"], payload["repository"]
    event = {
        "id": str(event_id),
        "type": TYPES[webhook],
        "actor": {
            "id": sender["id"],
            "login": sender["login"],
            "display_login": sender["login"],
            "gravatar_id": "",
            "url": f"https://api.github.com/users/{sender['login']}",
            "avatar_url": sender["avatar_url"],
        },
        "repo": {
            "id": repo["id"],
            "name": repo["full_name"],
            "url": f"https://api.github.com/repos/{repo['full_name']}",
        },
        "payload": {k: v for k, v in payload.items() if k not in _NOT_IN_EVENTS},
        "public": True,
        "created_at": created_at,
    }
    if "organization" in payload:
        org = payload["organization"]
        event["org"] = {"id": org["id"], "login": org["login"], "gravatar_id": "", "url": org["url"]}
    return event


def _user(template: dict, login: str, user_type: str = "User") -> dict:
    user = copy.deepcopy(template)
    user.update(login=login, type=user_type, html_url=f"https://github.com/{login}")
    return user


def _set_repo(payload: dict, repo: str) -> None:
    owner, name = repo.split("/")
    r = payload["repository"]
    r.update(full_name=repo, name=name, html_url=f"https://github.com/{repo}")
    r["owner"] = _user(r["owner"], owner)


@dataclass
class Thread:
    """One issue or pull request whose events a test writes, in time order."""

    repo: str
    number: int
    author: str
    title: str
    body: str
    author_type: str = "User"
    base: str = ""  # PRs: commits
    head: str = ""
    license: str | None = "MIT"
    merged: bool = False
    head_repo: str | None = None


@dataclass
class Stream:
    """Events in the order they happened: ids and times grow with each event."""

    events: list[dict] = field(default_factory=list)
    next_id: int = 26_000_000_000
    clock: datetime = datetime(2023, 3, 1, 9, 0, tzinfo=UTC)

    def _add(self, webhook: str, payload: dict) -> dict:
        self.next_id += 7
        self.clock += timedelta(minutes=13)
        event = envelope(webhook, payload, self.next_id, self.clock.strftime("%Y-%m-%dT%H:%M:%SZ"))
        self.events.append(event)
        return event

    def _issue(self, p: dict, t: Thread, state: str = "open", pr: bool = False) -> None:
        _set_repo(p, t.repo)
        issue = p["issue"]
        issue.update(number=t.number, title=t.title, body=t.body, state=state)
        issue["user"] = _user(issue["user"], t.author, t.author_type)
        issue["created_at"] = "2023-03-01T08:00:00Z"
        if pr:
            issue["pull_request"] = {"url": f"https://api.github.com/repos/{t.repo}/pulls/{t.number}"}
        else:
            issue.pop("pull_request", None)

    def issue_event(self, t: Thread, action: str, actor: str | None = None, actor_type: str = "User") -> dict:
        p = example("issues", "opened" if action in ("opened", "closed") else action)
        p["action"] = action
        self._issue(p, t, "closed" if action == "closed" else "open")
        p["sender"] = _user(p["sender"], actor or t.author, actor_type)
        return self._add("issues", p)

    def comment(
        self,
        t: Thread,
        actor: str,
        text: str,
        comment_id: int,
        action: str = "created",
        actor_type: str = "User",
        pr: bool = False,
    ) -> dict:
        p = example("issue_comment", action)
        self._issue(p, t, pr=pr)
        p["comment"].update(id=comment_id, body=text)
        p["comment"]["user"] = _user(p["comment"]["user"], actor, actor_type)
        p["sender"] = _user(p["sender"], actor, actor_type)
        return self._add("issue_comment", p)

    def _pr(self, p: dict, t: Thread, merged: bool | None = None) -> None:
        _set_repo(p, t.repo)
        pr = p["pull_request"]
        pr.update(number=t.number, title=t.title, body=t.body, created_at="2023-03-01T08:00:00Z")
        pr["user"] = _user(pr["user"], t.author, t.author_type)
        pr["base"]["sha"], pr["head"]["sha"] = t.base, t.head
        pr["base"]["repo"]["full_name"] = t.repo
        pr["base"]["repo"]["license"] = (
            None if t.license is None else {"key": t.license.lower(), "spdx_id": t.license}
        )
        pr["head"]["repo"]["full_name"] = t.head_repo or t.repo
        if merged is not None:
            pr["merged"] = merged
            pr["merged_at"] = "2023-03-02T08:00:00Z" if merged else None

    def pr_event(self, t: Thread, action: str, actor: str | None = None, merged: bool | None = None) -> dict:
        p = example(
            "pull_request", action if action in ("opened", "closed", "reopened", "synchronize") else "opened"
        )
        p["action"] = action
        p["number"] = t.number
        self._pr(p, t, merged)
        p["sender"] = _user(p["sender"], actor or t.author)
        return self._add("pull_request", p)

    def review(
        self, t: Thread, actor: str, body: str | None, state: str, review_id: int, actor_type: str = "User"
    ) -> dict:
        p = example("pull_request_review", "submitted")
        self._pr(p, t)
        p["review"].update(id=review_id, body=body, state=state, commit_id=t.head)
        p["review"]["user"] = _user(p["review"]["user"], actor, actor_type)
        p["sender"] = _user(p["sender"], actor, actor_type)
        return self._add("pull_request_review", p)

    def review_comment(
        self,
        t: Thread,
        actor: str,
        body: str,
        comment_id: int,
        path: str,
        diff_hunk: str,
        position: int,
        review_id: int | None = None,
        in_reply_to: int | None = None,
        action: str = "created",
    ) -> dict:
        p = example("pull_request_review_comment", action)
        self._pr(p, t)
        c = p["comment"]
        c.update(
            id=comment_id,
            body=body,
            path=path,
            diff_hunk=diff_hunk,
            original_position=position,
            position=position,
            pull_request_review_id=review_id,
            commit_id=t.head,
            original_commit_id=t.head,
        )
        if in_reply_to is None:
            c.pop("in_reply_to_id", None)
        else:
            c["in_reply_to_id"] = in_reply_to
        c["user"] = _user(c["user"], actor)
        p["sender"] = _user(p["sender"], actor)
        return self._add("pull_request_review_comment", p)


def write_dump(path: Path, events: list[dict], extra_lines: list[bytes] = ()) -> Path:
    """A GHArchive-style hourly dump: gzip, one event per line."""
    with gzip.open(path, "wb") as f:
        for event in events:
            f.write(orjson.dumps(event) + b"\n")
        for line in extra_lines:
            f.write(line + b"\n")
    return path


def run_chain(steps, rank: int = 0, world_size: int = 1) -> list:
    """Run datatrove steps in this process like one executor task; the documents that came out."""
    data = None
    for step in steps:
        data = step(data, rank, world_size)
    return list(data) if data is not None else []


def git(repo: Path, *args: str, stdin: bytes | None = None) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
        "GIT_AUTHOR_DATE": "2023-03-01T08:00:00Z",
        "GIT_COMMITTER_DATE": "2023-03-01T08:00:00Z",
        "PATH": "/usr/bin:/bin",
        "HOME": str(repo),
    }
    out = subprocess.run(
        ["git", "-C", str(repo), *args], input=stdin, capture_output=True, env=env, check=True
    )
    return out.stdout.decode().strip()


def commit_files(repo: Path, files: dict[str, str], message: str) -> str:
    """Write ``files`` into the work tree, commit them all; the commit's sha."""
    for path, text in files.items():
        target = repo / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def counters(step) -> dict[str, float]:
    """A step's datatrove counters by name."""
    return {k: v.total for k, v in step.stats.stats.items()}


def run_gharchive(
    tmp_path: Path,
    events: list[dict],
    kind: str,
    *,
    recipe: dict | None = None,
    opt_out: list[str] = (),
    repositories: dict[str, str] | None = None,
    files: int = 1,
    buckets: int = 1,
) -> tuple[list, list]:
    """The events pass (``files`` dumps, one task each) then the ``kind`` pass over ``buckets``
    buckets, in this process; every thread document (kept and removed) and the kind's steps."""
    from stackcoder.data.gharchive.events import ISSUE_KIND
    from stackcoder.data.gharchive.optout import EventOptOut
    from stackcoder.data.gharchive.partition import EventPartitioner
    from stackcoder.data.gharchive.passes import events_dir, issue_steps, pull_request_steps
    from stackcoder.data.gharchive.reader import EventReader
    from stackcoder.data.recipe import load_recipe

    recipe = recipe or load_recipe()
    tmp_path.mkdir(parents=True, exist_ok=True)
    work = tmp_path / "work"
    dumps = [str(write_dump(tmp_path / f"dump-{i}.json.gz", events[i::files])) for i in range(files)]
    for rank in range(files):
        run_chain(
            [
                EventReader(dumps),
                EventOptOut(list(opt_out)),
                EventPartitioner(str(events_dir(work)), buckets),
            ],
            rank,
            files,
        )
    docs, steps = [], []
    for rank in range(buckets):
        if kind == ISSUE_KIND:
            steps = issue_steps(recipe, work)
        else:
            steps = pull_request_steps(recipe, work, repositories or {})
        docs += run_chain(steps, rank, buckets)
    return docs, steps
