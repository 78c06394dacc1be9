"""Username anonymisation for issues and pull requests (recipe.md §6): each author becomes
``username_0``, ``username_1``, … in order of first appearance in the thread, and is replaced in the
thread's texts.

In texts, a mention (``@login``) is replaced whatever its case (GitHub logins are case-insensitive);
a bare login only as a whole word with the login's own case, so that a user called ``Bug`` leaves
"bug" alone. BigCode's code replaced every substring; ours is narrower on purpose. Only the
thread's authors are known, so a mention of someone who never wrote in the thread stays.
"""

from __future__ import annotations

import re

PREFIX = "username_"


class Usernames:
    def __init__(self) -> None:
        self.names: dict[str, str] = {}  # lower-cased login -> username_i
        self.logins: dict[str, str] = {}  # lower-cased login -> the login as first seen
        self._patterns: tuple[re.Pattern, re.Pattern] | None = None

    def add(self, login: str | None) -> str:
        """The placeholder of ``login``, numbered on first sight; a missing login is ``ghost``."""
        key = (login or "ghost").lower()
        if key not in self.names:
            self.names[key] = f"{PREFIX}{len(self.names)}"
            self.logins[key] = login or "ghost"
            self._patterns = None
        return self.names[key]

    def _compiled(self) -> tuple[re.Pattern, re.Pattern]:
        if self._patterns is None:
            # longest first, so "octo" never takes the front of "octocat"
            logins = sorted(self.logins.values(), key=len, reverse=True)
            alternatives = "|".join(re.escape(login) for login in logins)
            # not inside a word, a URL or path ("github.com/octocat/x"), an e-mail ("octocat@x.org")
            edge_before, edge_after = r"(?<![\w\-/.@])", r"(?![\w\-/@]|\[bot\])"
            self._patterns = (
                re.compile(rf"{edge_before}@({alternatives}){edge_after}", re.IGNORECASE),
                re.compile(rf"{edge_before}({alternatives}){edge_after}"),
            )
        return self._patterns

    def replace(self, text: str) -> str:
        """``text`` with the known logins replaced by their placeholders (mentions keep the ``@``)."""
        if not text or not self.names:
            return text
        mention, bare = self._compiled()
        text = mention.sub(lambda m: "@" + self.names[m.group(1).lower()], text)
        return bare.sub(lambda m: self.names[m.group(1).lower()], text)
