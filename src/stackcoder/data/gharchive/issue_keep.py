"""The issue keep rule (recipe.md §6, recipe.toml ``[issues]``): keep an issue with at least 200
characters of text and 2 or more authors, or with 1 author, at most 7,000 characters and at most
10 events. Text is the entries' texts after cleaning and bot removal (titles not counted); events
are the remaining entries, closings included; authors are distinct logins among them.
"""

from __future__ import annotations

from datatrove.data import Document

from stackcoder.data.gharchive.issue_thread import ENTRIES
from stackcoder.data.step import FileFilter


class IssueKeepFilter(FileFilter):
    name = "📏 issue size and authors"
    stage = "issue_filter"

    def __init__(
        self,
        min_chars: int = 200,
        min_authors: int = 2,
        max_single_author_chars: int = 7_000,
        max_single_author_events: int = 10,
    ):
        super().__init__()
        self.min_chars = min_chars
        self.min_authors = min_authors
        self.max_single_author_chars = max_single_author_chars
        self.max_single_author_events = max_single_author_events

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        entries = doc.metadata[ENTRIES]
        chars = sum(len(e["text"]) for e in entries)
        if chars < self.min_chars:
            return False, "too_short"
        if len({(e["author"] or "").lower() for e in entries}) >= self.min_authors:
            return True
        if chars > self.max_single_author_chars:
            return False, "single_author_too_long"
        if len(entries) > self.max_single_author_events:
            return False, "single_author_too_many_events"
        return True
