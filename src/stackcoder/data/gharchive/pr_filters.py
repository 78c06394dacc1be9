"""Which pull requests are kept (recipe.md §6, recipe.toml ``[pull_requests]``).

In order, a PR is removed when: opened by a bot (``bot_opened``); its title is shorter than
``min_title_chars`` or names one of ``title_excluded_words`` (``title_too_short``,
``title_excluded_word``: BigCode's code drops "dependency"/"release" PRs, mostly automated); its
description is empty or shorter than ``min_text_chars`` once cleaned (``empty_description``);
nobody but bots reviewed or commented (``no_human_activity``); it was neither merged nor approved
(``not_merged_or_approved``); its base commit changed (``base_changed``: more than one base, or two
for a merged PR, whose last event may carry the updated base, as BigCode counted); its repository's
license (GitHub's, from the payload) is non-permissive (``non_permissive_license``).

Kept PRs lose their bot entries and the human comments that triggered them (``drop_bot_entries``).
"""

from __future__ import annotations

from datatrove.data import Document

from stackcoder.data.gharchive.bots import BotNames
from stackcoder.data.gharchive.issue_bots import is_trigger
from stackcoder.data.gharchive.pr_thread import ENTRIES
from stackcoder.data.gharchive.text import remove_html_comments, strip_email_reply
from stackcoder.data.license import classify
from stackcoder.data.step import FileStep

_NO_LICENSE_ANSWER = frozenset({"", "noassertion", "other", "none"})


def license_class(spdx: str | None) -> str:
    """The class of a repository's license as GitHub names it (``NOASSERTION``, ``other``: unknown)."""
    if not spdx or spdx.strip().lower() in _NO_LICENSE_ANSWER:
        return "no_license"
    return classify([spdx.strip()])[1]


def clean_text(text: str | None) -> str:
    return remove_html_comments(strip_email_reply(text or "")).strip()


class PullRequestFilter(FileStep):
    name = "🔎 pull request filters"
    stage = "pr_filter"

    def __init__(
        self,
        bots: BotNames,
        min_title_chars: int = 10,
        title_excluded_words: tuple[str, ...] = ("depend", "release"),
        min_text_chars: int = 20,
        keep_license_classes: tuple[str, ...] = ("permissive", "no_license"),
        drop_bot_entries: bool = True,
    ):
        super().__init__()
        self.bots = bots
        self.min_title_chars = min_title_chars
        self.title_excluded_words = tuple(w.lower() for w in title_excluded_words)
        self.min_text_chars = min_text_chars
        self.keep_license_classes = tuple(keep_license_classes)
        self.drop_bot_entries = drop_bot_entries

    def process(self, doc: Document) -> str | None:
        meta, entries = doc.metadata, doc.metadata[ENTRIES]
        if self.bots(meta["author"], meta["author_type"]):
            return "bot_opened"
        title = (meta["title"] or "").strip()
        if len(title) < self.min_title_chars:
            return "title_too_short"
        if any(word in title.lower() for word in self.title_excluded_words):
            return "title_excluded_word"
        if len(clean_text(meta["body"])) < max(1, self.min_text_chars):
            return "empty_description"
        humans = [
            e for e in entries[1:] if e["event"] != "pr" and not self.bots(e["author"], e["author_type"])
        ]
        if not humans:
            return "no_human_activity"
        approved = any(e["event"] == "review" and e["state"] == "approved" for e in humans)
        if not (meta["merged"] or approved):
            return "not_merged_or_approved"
        if len(meta["bases"]) - (1 if meta["merged"] else 0) > 1:
            return "base_changed"
        if license_class(meta["license"]) not in self.keep_license_classes:
            return "non_permissive_license"
        if self.drop_bot_entries:
            kept: list[dict] = [entries[0]]
            for i, entry in enumerate(entries[1:], 1):
                if entry["event"] == "pr" or not self.bots(entry["author"], entry["author_type"]):
                    kept.append(entry)
                    continue
                self.stat_update("bot_entries")
                before = entries[i - 1]
                if (
                    kept[-1] is before
                    and before["event"] == "comment"
                    and is_trigger(before, entry["author"])
                ):
                    kept.pop()
                    self.stat_update("bot_trigger_comments")
            meta[ENTRIES] = kept
        return None
