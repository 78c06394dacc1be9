"""A pull request's events as its timeline (recipe.md §6).

Entries, in time order: ``pr`` (a PullRequestEvent: opened, closed, reopened, synchronize, ...),
``comment`` (a conversation comment, an IssueCommentEvent on the PR), ``review`` and
``review_comment``. Each PR-type entry records the PR's ``head`` and ``base`` commits at that time:
a new head is a new push, whose diff the renderer shows before the entry. The opening is
synthesised from the first PR object when the dumps lack the ``opened`` event (stat
``opened_synthesized``); a thread with conversation comments only has no PR object (no title,
base or head) and is removed (``no_pull_request_object``).

Metadata after this step: ``title``, ``body``, ``author``, ``author_type``, ``license``,
``head_repo``, ``merged``, ``bases`` (distinct base commits, in order), ``entries``; ``events`` is dropped.
"""

from __future__ import annotations

from datatrove.data import Document

from stackcoder.data.gharchive.events import ISSUE_COMMENT, PULL_REQUEST, REVIEW, REVIEW_COMMENT, Event
from stackcoder.data.gharchive.partition import EVENTS
from stackcoder.data.step import FileStep

ENTRIES = "entries"
PR_FIELDS = ("title", "body", "author", "author_type", "license", "head_repo")


def _pr_entry(e: Event, action: str) -> dict:
    return {
        "event": "pr",
        "action": action,
        "author": e["actor"],
        "author_type": e["actor_type"],
        "head": e["head_sha"],
        "base": e["base_sha"],
        "merged": e["merged"],
        "text": "",
    }


class PullRequestBuilder(FileStep):
    name = "🧵 pull request timeline"
    stage = "pr_events"

    def process(self, doc: Document) -> str | None:
        events: list[Event] = doc.metadata.pop(EVENTS)
        with_pr = [e for e in events if e["type"] in (PULL_REQUEST, REVIEW, REVIEW_COMMENT)]
        if not with_pr:
            return "no_pull_request_object"
        opened_event = next(
            (e for e in with_pr if e["type"] == PULL_REQUEST and e["action"] == "opened"), None
        )
        first = opened_event or with_pr[0]
        for key in PR_FIELDS:
            doc.metadata[key] = first.get(key)
        if opened_event is None:
            self.stat_update("opened_synthesized")
        opened = _pr_entry(first, "opened") | {"author": first["author"], "author_type": first["author_type"]}
        entries: list[dict] = [opened]
        by_id: dict[tuple[str, object], dict] = {}
        for e in events:
            action, kind = e["action"], e["type"]
            if kind == PULL_REQUEST:
                if e is not opened_event:
                    entries.append(_pr_entry(e, action))
                continue
            if kind == ISSUE_COMMENT:
                entry = {"event": "comment", "id": e["comment_id"]}
            elif kind == REVIEW:
                entry = {"event": "review", "id": e["review_id"], "state": e["state"]}
            elif kind == REVIEW_COMMENT:
                keys = ("review_id", "in_reply_to", "path", "diff_hunk", "position")
                entry = {"event": "review_comment", "id": e["comment_id"], **{k: e[k] for k in keys}}
            else:  # an IssuesEvent on a PR repeats what the PR events say
                self.stat_update("ignored_events")
                continue
            key = (entry["event"], entry["id"])
            if action == "deleted":
                if key in by_id:
                    entries.remove(by_id.pop(key))
                continue
            if action == "edited" and key in by_id:
                by_id[key]["text"] = e["text"]
                continue
            if action == "dismissed" and key in by_id:
                by_id[key]["state"] = "dismissed"
                continue
            entry |= {"author": e["actor"], "author_type": e["actor_type"], "text": e["text"]}
            entry |= {"head": e.get("head_sha"), "base": e.get("base_sha")}
            by_id[key] = entry
            entries.append(entry)
        doc.metadata[ENTRIES] = entries
        doc.metadata["merged"] = any(e["merged"] for e in with_pr)
        doc.metadata["bases"] = list(dict.fromkeys(e["base_sha"] for e in with_pr if e["base_sha"]))
        return None
