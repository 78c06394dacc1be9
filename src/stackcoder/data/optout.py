"""Opt-out (recipe.md §1 stage 9, recipe.toml ``[opt_out]``): drop every file of the repositories
whose owners asked to be removed.

A pattern is an owner (``octocat``: all their repositories) or a repository (``octocat/hello-world``),
with fnmatch globs (``octo*``, ``octocat/test-*``), compared case-insensitively as GitHub compares
names. ``user:LOGIN`` names a GitHub user for the issue and pull-request sources: their own issues,
pull requests and comments, in any repository (``data/gharchive``); it matches no repository.
Lists come from the recipe and from files: one pattern per line, ``#`` starts a comment.
Matching files are removed with stage ``opt_out``, which the writer never writes anywhere: nothing
of an opted-out repository appears in any output, only the counts (docs/optout.md).
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from datatrove.data import Document, DocumentsPipeline

from stackcoder.data import fields as F
from stackcoder.data.step import FileStep, is_removed, mark_removed
from stackcoder.errors import UserError

# GitHub's characters for owners (letters, digits, '-') and repositories (also '.', '_'), plus globs
_PART = re.compile(r"[A-Za-z0-9._\-*?\[\]!]+")


USER_PREFIX = "user:"  # a user's own issues, pull requests and comments (docs/optout.md)
# the list file `stackcoder optout add` keeps and `build --opt-out` / `index optout` read
ENV = "STACKCODER_OPTOUT"
DEFAULT_FILE = "optout.txt"
HEADER = "# stackcoder opt-out list: one owner or owner/repo per line (globs allowed), see docs/optout.md"


def check_pattern(pattern: str, where: str = "opt-out pattern") -> str:
    """The pattern, stripped; a UserError naming ``where`` if it is not ``owner``, ``owner/repo``
    or ``user:login``."""
    pattern = pattern.strip()
    if pattern.lower().startswith(USER_PREFIX):
        if not _PART.fullmatch(pattern[len(USER_PREFIX) :]):
            raise UserError(f"{where}: {pattern!r} is not a user:login pattern")
        return pattern
    parts = pattern.split("/")
    if len(parts) > 2 or not all(_PART.fullmatch(part) for part in parts):
        raise UserError(f"{where}: {pattern!r} is not an owner or owner/repo pattern")
    return pattern


def parse_optout(text: str, where: str) -> list[str]:
    """The patterns of an opt-out list's text; ``where`` names it in errors (``FILE:LINE``)."""
    patterns = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line:
            patterns.append(check_pattern(line, f"{where}:{n}"))
    return patterns


def load_optout(path: str | Path) -> list[str]:
    """The patterns of an opt-out list file, in file order."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"opt-out list {path}: cannot read it: {e}") from None
    return parse_optout(text, str(path))


def merge_optout(*lists: Iterable[str]) -> list[str]:
    """One sorted list without duplicates (names compare case-insensitively: lower-cased)."""
    return sorted({check_pattern(p).lower() for patterns in lists for p in patterns})


def default_file() -> Path:
    """``$STACKCODER_OPTOUT`` if set, else ``optout.txt`` in the current directory."""
    return Path(os.environ.get(ENV) or DEFAULT_FILE)


def add_patterns(path: Path, patterns: Iterable[str]) -> tuple[int, int]:
    """Merge ``patterns`` into the list file at ``path`` (created if absent), rewritten sorted and
    without duplicates, its full-line comments kept at the top; never a half-written list. Returns
    (patterns added, patterns in the list)."""
    from stackcoder.atomic import write_text

    new = [check_pattern(p, "optout add") for p in patterns]
    comments: list[str] = []
    old: list[str] = []
    if path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"opt-out list {path}: cannot read it: {e}") from None
        old = parse_optout(text, str(path))
        comments = [line.rstrip() for line in text.splitlines() if line.lstrip().startswith("#")]
    merged = merge_optout(old, new)
    write_text(path, "\n".join([*(comments or [HEADER]), *merged]) + "\n")
    return len(merged) - len(merge_optout(old)), len(merged)


class OptOutMatcher:
    """Answers "is this repository opted out?": exact names by set lookup, then the globs."""

    def __init__(self, patterns: Iterable[str]):
        self.owners: set[str] = set()
        self.repos: set[str] = set()
        self.globs: list[list[str]] = []
        self.users: set[str] = set()
        self.user_globs: list[str] = []
        for pattern in merge_optout(patterns):
            if pattern.startswith(USER_PREFIX):
                login = pattern[len(USER_PREFIX) :]
                if any(c in login for c in "*?["):
                    self.user_globs.append(login)
                else:
                    self.users.add(login)
                continue
            parts = pattern.split("/")
            if any(c in pattern for c in "*?["):
                self.globs.append(parts)
            else:
                (self.repos if len(parts) == 2 else self.owners).add(pattern)

    def matches(self, repo_name: str) -> bool:
        name = repo_name.lower()
        owner = name.split("/", 1)[0]
        if name in self.repos or owner in self.owners:
            return True
        parts = name.split("/", 1)
        # part by part, so a '*' never crosses the '/'; an owner pattern covers all its repositories
        return any(
            all(fnmatch.fnmatchcase(part, g) for part, g in zip(parts, glob, strict=False))
            and len(parts) >= len(glob)
            for glob in self.globs
        )

    def matches_user(self, login: str | None) -> bool:
        """Is ``login`` a user opted out with ``user:LOGIN`` (their issues, PRs and comments)?"""
        if not login:
            return False
        name = login.lower()
        return name in self.users or any(fnmatch.fnmatchcase(name, g) for g in self.user_globs)


class OptOutFilter(FileStep):
    """Removes every file of an opted-out repository (reason ``opted_out``), even one already removed."""

    name = "🙅 Opt-out"
    stage = "opt_out"

    def __init__(self, owners_and_repos: list[str] | None = None, files: list[str] | None = None):
        """``owners_and_repos``: the recipe's patterns; ``files``: opt-out list files, read here."""
        super().__init__()
        where = "opt_out.owners_and_repos"
        patterns = [check_pattern(p, where) for p in owners_and_repos or []]
        for path in files or []:
            patterns += load_optout(path)
        self.patterns = merge_optout(patterns)
        self._matcher: OptOutMatcher | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_matcher": None}

    def matcher(self) -> OptOutMatcher:
        if self._matcher is None:
            self._matcher = OptOutMatcher(self.patterns)
        return self._matcher

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        seen_repos: set[str] = set()
        for doc in data:
            with self.track_time():
                repo = doc.metadata.get(F.REPO_NAME) or ""
                opted_out = bool(self.patterns) and self.matcher().matches(repo)
            if opted_out and repo not in seen_repos:
                seen_repos.add(repo)
                self.stat_update("opted_out_repos")
            if not is_removed(doc):
                self.account(doc, "opted_out" if opted_out else None)
            elif opted_out:
                # an earlier removal (a binary or oversized file at ingest) would still be written to
                # removed/ with its path: relabel it, so nothing of the repository is written
                mark_removed(doc, self.stage, "opted_out")
                doc.metadata.pop(F.REMOVED_DETAIL, None)
                self.stat_update("opted_out_already_removed")
            yield doc
