"""Opt-out for issues and pull requests (recipe.md §6, docs/optout.md), applied to single events
before anything is written, so no work file holds an opted-out event.

- an opted-out repository (``owner`` or ``owner/repo`` pattern) loses every issue and pull request;
  a PR whose head repository is opted out (a fork of an opted-out owner) loses the fork's name at
  once and the whole PR at the thread stage (``ThreadOptOut``: its conversation comments carry no
  head repository, so only the grouped thread knows they belong to it);
- an opted-out user (``user:login``) loses their own comments and reviews everywhere, and every
  issue and pull request they opened (all events of it: the opening text is in each event's
  issue or PR object).

Removed events get stage ``opt_out``, which no writer writes; the counts are
``dropped_opted_out`` and, by cause, ``opted_out_repository`` / ``opted_out_author`` /
``opted_out_user_event``.
"""

from __future__ import annotations

from datatrove.data import Document

from stackcoder.data.gharchive.partition import EVENTS
from stackcoder.data.gharchive.reader import EVENT
from stackcoder.data.optout import OptOutMatcher, check_pattern, load_optout, merge_optout
from stackcoder.data.step import FileStep

HEAD_OPTED_OUT = "head_opted_out"  # an event's key: its PR comes from an opted-out fork


class EventOptOut(FileStep):
    name = "🙅 Opt-out (events)"
    stage = "opt_out"

    def __init__(self, patterns: list[str] | None = None, files: list[str] | None = None):
        super().__init__()
        found = [check_pattern(p, "opt_out.owners_and_repos") for p in patterns or []]
        for path in files or []:
            found += load_optout(path)
        self.patterns = merge_optout(found)
        self._matcher: OptOutMatcher | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_matcher": None}

    def process(self, doc: Document) -> str | None:
        if not self.patterns:
            return None
        if self._matcher is None:
            self._matcher = OptOutMatcher(self.patterns)
        m, event = self._matcher, doc.metadata[EVENT]
        if m.matches(event["repo"]):
            self.stat_update("opted_out_repository")
            return "opted_out"
        if event.get("head_repo") and m.matches(event["head_repo"]):
            event["head_repo"], event[HEAD_OPTED_OUT] = None, True
            self.stat_update("opted_out_head_repository")
        if m.matches_user(event.get("author")):
            self.stat_update("opted_out_author")
            return "opted_out"
        if m.matches_user(event.get("actor")):
            self.stat_update("opted_out_user_event")
            return "opted_out"
        return None


class ThreadOptOut(FileStep):
    """Removes, written nowhere (stage ``opt_out``), a pull request that came from an opted-out fork."""

    name = "🙅 Opt-out (forks)"
    stage = "opt_out"

    def process(self, doc: Document) -> str | None:
        return "opted_out" if any(e.get(HEAD_OPTED_OUT) for e in doc.metadata[EVENTS]) else None
