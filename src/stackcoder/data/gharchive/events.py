"""GHArchive events to the few fields the issue and pull-request passes use (recipe.md §6).

A GHArchive hourly dump is gzip, one GitHub Events-API event per line: an envelope (``id``,
``type``, ``actor``, ``repo``, ``payload``, ``public``, ``created_at``, optional ``org``) around a
``payload`` that is the webhook payload of that event minus ``repository``/``sender``. Five types
matter here:

- ``IssuesEvent``: ``action`` + ``issue``; an ``issue`` with a ``pull_request`` key is a PR;
- ``IssueCommentEvent``: ``action`` + ``issue`` + ``comment`` (PR conversation comments come as these);
- ``PullRequestEvent``: ``action`` + ``number`` + ``pull_request``;
- ``PullRequestReviewEvent``: ``action`` + ``review`` + ``pull_request``;
- ``PullRequestReviewCommentEvent``: ``action`` + ``comment`` (``diff_hunk``, ``path``,
  ``original_position``, ``in_reply_to_id``, ``pull_request_review_id``) + ``pull_request``.

``normalize`` turns one event into a flat dict (``Event``) or says why it cannot: the reason is
counted, never raised. Every other event type is counted as ``other_event_type``.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from typing import Any

import orjson

from stackcoder.errors import UserError

ISSUES = "IssuesEvent"
ISSUE_COMMENT = "IssueCommentEvent"
PULL_REQUEST = "PullRequestEvent"
REVIEW = "PullRequestReviewEvent"
REVIEW_COMMENT = "PullRequestReviewCommentEvent"
EVENT_TYPES = (ISSUES, ISSUE_COMMENT, PULL_REQUEST, REVIEW, REVIEW_COMMENT)

ISSUE_KIND = "issues"  # the parts of the dataset: DIR/issues/, DIR/pull_requests/
PR_KIND = "pull_requests"

Event = dict[str, Any]

# skip reasons (stats: ``skipped_<reason>``)
MALFORMED = "malformed_json"
NOT_AN_EVENT = "not_an_event"  # JSON, but no type/repo/actor/payload of the Events API shape
OTHER_TYPE = "other_event_type"
INCOMPLETE = "incomplete_payload"  # a known type whose payload lacks the object it is about
TRUNCATED_GZIP = "truncated_gzip"  # the file ends inside the gzip stream (an interrupted download)
NOT_GZIP = "not_gzip"


def _obj(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _login(user: Any) -> tuple[str | None, str | None]:
    user = _obj(user)
    login = user.get("login")
    return (login if isinstance(login, str) and login else None), user.get("type")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _pull_request_fields(pr: dict) -> dict[str, Any]:
    """What every PR event carries about the PR as it was then: its opening, base and head."""
    author, author_type = _login(pr.get("user"))
    base, head = _obj(pr.get("base")), _obj(pr.get("head"))
    license_ = _obj(_obj(base.get("repo")).get("license"))
    return {
        "title": pr.get("title") if isinstance(pr.get("title"), str) else None,
        "body": pr.get("body") if isinstance(pr.get("body"), str) else None,
        "author": author,
        "author_type": author_type,
        "opened_at": pr.get("created_at"),
        "merged": pr.get("merged") is True or bool(pr.get("merged_at")),
        "base_sha": base.get("sha"),
        "head_sha": head.get("sha"),
        "head_repo": _obj(head.get("repo")).get("full_name"),
        "license": license_.get("spdx_id"),
    }


def normalize(raw: Any) -> Event | str:
    """One Events-API event as a flat ``Event``, or the reason it is skipped."""
    if not isinstance(raw, dict):
        return NOT_AN_EVENT
    kind, payload = raw.get("type"), raw.get("payload")
    repo = _obj(raw.get("repo")).get("name")
    if (
        not isinstance(kind, str)
        or not isinstance(payload, dict)
        or not isinstance(repo, str)
        or "/" not in repo
    ):
        return NOT_AN_EVENT
    if kind not in EVENT_TYPES:
        return OTHER_TYPE
    actor, _ = _login(raw.get("actor"))
    event: Event = {
        "id": str(raw.get("id") or ""),
        "type": kind,
        "action": payload.get("action") if isinstance(payload.get("action"), str) else "",
        "actor": actor,
        "actor_type": None,
        "at": raw.get("created_at") if isinstance(raw.get("created_at"), str) else "",
        "repo": repo,
    }
    if kind in (ISSUES, ISSUE_COMMENT):
        issue = _obj(payload.get("issue"))
        number = _int(issue.get("number"))
        if number is None:
            return INCOMPLETE
        author, author_type = _login(issue.get("user"))
        event |= {
            "kind": PR_KIND if issue.get("pull_request") else ISSUE_KIND,
            "number": number,
            "title": issue.get("title") if isinstance(issue.get("title"), str) else None,
            "body": issue.get("body") if isinstance(issue.get("body"), str) else None,
            "author": author,
            "author_type": author_type,
            "opened_at": issue.get("created_at"),
        }
        if kind == ISSUE_COMMENT:
            comment = _obj(payload.get("comment"))
            if _int(comment.get("id")) is None:
                return INCOMPLETE
            _, event["actor_type"] = _login(comment.get("user"))
            event |= {"comment_id": _int(comment.get("id")), "text": _text(comment.get("body"))}
        return event
    pr = _obj(payload.get("pull_request"))
    number = _int(pr.get("number")) or _int(payload.get("number"))
    if number is None:
        return INCOMPLETE
    event |= {"kind": PR_KIND, "number": number, **_pull_request_fields(pr)}
    if kind == REVIEW:
        review = _obj(payload.get("review"))
        if _int(review.get("id")) is None:
            return INCOMPLETE
        _, event["actor_type"] = _login(review.get("user"))
        event |= {
            "review_id": _int(review.get("id")),
            "text": _text(review.get("body")),
            "state": str(review.get("state") or "").lower(),
            "commit": review.get("commit_id"),
        }
    elif kind == REVIEW_COMMENT:
        comment = _obj(payload.get("comment"))
        if _int(comment.get("id")) is None:
            return INCOMPLETE
        _, event["actor_type"] = _login(comment.get("user"))
        event |= {
            "comment_id": _int(comment.get("id")),
            "text": _text(comment.get("body")),
            "review_id": _int(comment.get("pull_request_review_id")),
            "in_reply_to": _int(comment.get("in_reply_to_id")),
            "path": _text(comment.get("path")),
            "diff_hunk": _text(comment.get("diff_hunk")),
            "position": _int(comment.get("original_position")) or _int(comment.get("position")),
            "commit": comment.get("original_commit_id") or comment.get("commit_id"),
        }
    elif kind == PULL_REQUEST and event["action"] == "opened":
        event["actor_type"] = event["author_type"]
    return event


def event_text_bytes(event: Event) -> int:
    """UTF-8 bytes of an event's own text (title, body or comment), for the funnel's byte counts."""
    n = 0
    for key in ("text", "title", "body"):
        value = event.get(key)
        if value:
            n += len(value.encode("utf-8", "surrogatepass"))
    return n


def iter_dump(path: str) -> Iterator[tuple[int, Any | str]]:
    """``(bytes, parsed JSON)`` per line of a GHArchive dump, or ``(bytes, reason)`` for a line
    that is not JSON and, last, for a file that is not gzip or ends inside its gzip stream.

    Lines read before a truncation are yielded as usual: an interrupted download loses its tail,
    not the events that arrived.
    """
    try:
        with gzip.open(path, "rb") as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    yield len(line), orjson.loads(line)
                except orjson.JSONDecodeError:
                    yield len(line), MALFORMED
    except EOFError:
        yield 0, TRUNCATED_GZIP
    except (gzip.BadGzipFile, zlib.error):
        yield 0, NOT_GZIP


def event_files(paths: list[str]) -> list[str]:
    """The dumps named by ``--events``: files as given, directories as their ``*.json.gz`` files
    (sorted); a missing path is a ``UserError`` before anything runs."""
    found: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            inside = sorted(n for n in os.listdir(path) if n.endswith(".json.gz"))
            if not inside:
                raise UserError(f"--events {path}: a directory without *.json.gz files")
            found += [os.path.join(path, n) for n in inside]
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise UserError(f"--events {path}: no such file (expected GHArchive dumps, *.json.gz)")
    if len(set(map(os.path.realpath, found))) != len(found):
        raise UserError("--events: a dump is given twice")
    return found
