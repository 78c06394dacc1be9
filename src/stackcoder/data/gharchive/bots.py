"""Which GitHub accounts are bots (recipe.md §6; recipe.toml ``[events.bots]``).

The recipe names patterns (ending in ``[bot]``, containing ``bot``-manager / ``jenkins`` / ``travis``
/ ``k8s-`` / ``-test-``, ending in ``-ci`` / ``-bot`` / ``-build`` / ``-linter``, "…"); the full lists
come from BigCode's published issue-filtering code and are the recipe's defaults. Ours on top:
an account GitHub itself marks ``"type": "Bot"`` in the payload (GitHub Apps) is a bot too.
Names compare lower-cased.
"""

from __future__ import annotations

from collections.abc import Iterable


class BotNames:
    def __init__(
        self,
        names: Iterable[str] = (),
        contains: Iterable[str] = (),
        suffixes: Iterable[str] = (),
        use_user_type: bool = True,
    ):
        self.names = frozenset(n.lower() for n in names)
        self.contains = tuple(c.lower() for c in contains)
        self.suffixes = tuple(s.lower() for s in suffixes)
        self.use_user_type = use_user_type

    def __call__(self, login: str | None, user_type: str | None = None) -> bool:
        if self.use_user_type and isinstance(user_type, str) and user_type.lower() == "bot":
            return True
        if not login:  # a deleted account ("ghost"): a person we cannot name, not a bot
            return False
        name = login.lower()
        return name in self.names or name.endswith(self.suffixes) or any(c in name for c in self.contains)

    @classmethod
    def from_recipe(cls, section: dict) -> BotNames:
        return cls(section["names"], section["contains"], section["suffixes"], section["use_user_type"])
