"""Bots out of issues (recipe.md §6): a bot's entries are removed, and with each the human comment
that triggered it, when it comes right before the bot's reply and names the bot or starts with
``/`` (a command: ``/retest``, ``/assign``). An issue opened by a bot is removed (``opened_by_bot``):
its opening post is the bot's text, and what remains would be replies to nothing.
"""

from __future__ import annotations

from datatrove.data import Document

from stackcoder.data.gharchive.bots import BotNames
from stackcoder.data.gharchive.issue_thread import ENTRIES
from stackcoder.data.step import FileStep


def is_trigger(comment: dict, bot_login: str | None) -> bool:
    """Does this human comment call the bot that answers it?"""
    text = comment["text"].lstrip()
    if text.startswith("/"):
        return True
    if not bot_login:
        return False
    name = bot_login.lower().removesuffix("[bot]")
    return bool(name) and name in text.lower()


class IssueBotFilter(FileStep):
    name = "🤖 issue bots"
    stage = "issue_bots"

    def __init__(self, bots: BotNames):
        super().__init__()
        self.bots = bots

    def process(self, doc: Document) -> str | None:
        entries = doc.metadata[ENTRIES]
        if self.bots(entries[0]["author"], entries[0]["author_type"]):
            return "opened_by_bot"
        kept: list[dict] = []
        for i, entry in enumerate(entries):
            if not self.bots(entry["author"], entry["author_type"]):
                kept.append(entry)
                continue
            self.stat_update("bot_entries")
            before = entries[i - 1]
            if (
                i > 1
                and kept
                and kept[-1] is before
                and before["event"] == "comment"
                and is_trigger(before, entry["author"])
            ):
                kept.pop()
                self.stat_update("bot_trigger_comments")
        doc.metadata[ENTRIES] = kept
        return None
