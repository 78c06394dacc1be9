"""Issue texts cleaned (recipe.md §6, recipe.toml ``[issues]``): email-reply boilerplate stripped,
then texts longer than 80 lines cut to the first 60, ``[Truncated]`` and the last 20. Removes nothing.
"""

from __future__ import annotations

from datatrove.data import Document

from stackcoder.data.gharchive.issue_thread import ENTRIES
from stackcoder.data.gharchive.text import strip_email_reply, truncate_lines
from stackcoder.data.step import FileStep


class IssueTextCleaner(FileStep):
    name = "🧽 issue texts"
    stage = "issue_text"

    def __init__(
        self,
        strip_email_replies: bool = True,
        max_lines: int = 80,
        head_lines: int = 60,
        tail_lines: int = 20,
    ):
        super().__init__()
        self.strip_email_replies = strip_email_replies
        self.max_lines, self.head_lines, self.tail_lines = max_lines, head_lines, tail_lines

    def process(self, doc: Document) -> None:
        for entry in doc.metadata[ENTRIES]:
            text = entry["text"]
            if self.strip_email_replies:
                stripped = strip_email_reply(text)
                if stripped != text.strip():
                    self.stat_update("email_replies_stripped")
                text = stripped
            cut = truncate_lines(text, self.max_lines, self.head_lines, self.tail_lines)
            if cut is not text:
                self.stat_update("texts_truncated")
            entry["text"] = cut
        return None
