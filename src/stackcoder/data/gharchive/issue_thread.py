"""An issue's events as its timeline (recipe.md §6): the opening post, comments, closings.

Events come sorted by time (``partition.ThreadReader``). The opening post is the ``opened``
IssuesEvent; when the dumps lack it (the issue is older than the dumps read, or GHArchive missed
the hour) it is synthesised from the issue object every issue event carries: its author, title,
body and creation time (stat ``opened_synthesized``). Comments follow their ``created``, ``edited``
(new text) and ``deleted`` actions; ``closed`` and ``reopened`` are kept as bare entries; other
actions (labeled, assigned, ...) carry no text and are counted, not kept.

Metadata after this step: ``title`` and ``entries``, a list of ``{"event": "opened" | "comment" |
"closed" | "reopened", "author", "author_type", "text", "id"}``; ``events`` is dropped.
"""

from __future__ import annotations

from datatrove.data import Document

from stackcoder.data.gharchive.events import ISSUE_COMMENT, ISSUES, Event
from stackcoder.data.gharchive.partition import EVENTS
from stackcoder.data.step import FileStep

TITLE = "title"
ENTRIES = "entries"


def _entry(kind: str, author: str | None, author_type: str | None, text: str, id_: object = None) -> dict:
    return {"event": kind, "author": author, "author_type": author_type, "text": text or "", "id": id_}


class IssueThreadBuilder(FileStep):
    name = "🧵 issue timeline"
    stage = "issue_events"

    def process(self, doc: Document) -> str | None:
        events: list[Event] = doc.metadata.pop(EVENTS)
        opened: dict | None = None
        entries: list[dict] = []
        comments: dict[object, dict] = {}
        for e in events:
            action = e["action"]
            if e["type"] == ISSUES:
                if action == "opened" and opened is None:
                    opened = _entry("opened", e["author"] or e["actor"], e["author_type"], e["body"])
                    doc.metadata[TITLE] = e["title"]
                elif action in ("closed", "reopened"):
                    entries.append(_entry(action, e["actor"], e["actor_type"], ""))
                else:
                    self.stat_update("ignored_actions")
            elif e["type"] == ISSUE_COMMENT:
                cid = e["comment_id"]
                if action == "deleted":
                    gone = comments.pop(cid, None)
                    if gone is not None:
                        entries.remove(gone)
                    self.stat_update("deleted_comments")
                elif action == "edited" and cid in comments:
                    comments[cid]["text"] = e["text"]
                else:  # created, or an edit of a comment made before the dumps start
                    comments[cid] = _entry("comment", e["actor"], e["actor_type"], e["text"], cid)
                    entries.append(comments[cid])
        if opened is None:
            source = next((e for e in events if e.get("author")), None)
            if source is None:
                return "no_issue_object"
            opened = _entry("opened", source["author"], source["author_type"], source["body"])
            doc.metadata[TITLE] = source["title"]
            self.stat_update("opened_synthesized")
        if doc.metadata.get(TITLE) is None:  # an opened event without title: any later snapshot's
            doc.metadata[TITLE] = next((e["title"] for e in reversed(events) if e.get("title")), "")
        doc.metadata[ENTRIES] = [opened, *entries]
        return None
