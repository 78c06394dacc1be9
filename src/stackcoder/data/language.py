"""Language detection with go-enry, the Go port of GitHub Linguist (recipe.md §1, stage 1).

Per file it records The Stack v2's `language`, `extension`, `is_vendor` and `is_generated`, and
removes files enry cannot name (`unknown_language`) and files of excluded languages
(`excluded_language`). Labels already present (a re-processed The Stack v2 record) are kept.
"""

from __future__ import annotations

import posixpath
from types import ModuleType

from datatrove.data import Document

from stackcoder.data import fields as F
from stackcoder.data.step import FileStep
from stackcoder.errors import UserError


def enry() -> ModuleType:
    """go-enry, imported on first use, never at import: loading it starts a Go runtime, which does
    not survive ``fork``, and datatrove's Ray executor forks its task processes from the actor that
    unpickled the steps. Imported after the fork, each process has a runtime of its own."""
    import enry as module

    return module


def file_extension(path: str) -> str:
    """The extension, BigCode style: after the basename's last dot, without the dot ("py").

    Files without one (``Makefile``) and dotfiles (``.gitignore``) get "". Case is kept.
    """
    _, ext = posixpath.splitext(posixpath.basename(path))
    return ext[1:]


def unknown_language_names(names: list[str]) -> list[str]:
    """The names that are not enry languages (exact, case-sensitive Linguist names).

    enry-python 0.2.0 cannot list its languages; ``get_language_type`` answers "unknown" for a
    name outside Linguist's table, and one of programming/data/markup/prose otherwise.
    """
    return [name for name in names if enry().get_language_type(name) == "unknown"]


class LanguageDetector(FileStep):
    """Sets language/extension/is_vendor/is_generated; removes unknown and excluded languages."""

    name = "🔤 Language (go-enry)"
    stage = "language"

    def __init__(self, exclude_languages: list[str] | None = None, drop_unknown: bool = True):
        super().__init__()
        exclude_languages = list(exclude_languages or [])
        if unknown := unknown_language_names(exclude_languages):
            raise UserError(
                "language.exclude_languages: not go-enry language names: "
                + ", ".join(repr(n) for n in unknown)
                + " (use Linguist's exact spelling, e.g. 'Graphviz (DOT)')"
            )
        self.exclude_languages = frozenset(exclude_languages)
        self.drop_unknown = drop_unknown

    def process(self, doc: Document) -> str | None:
        meta = doc.metadata
        path = meta.get(F.PATH) or ""
        needs_content = meta.get(F.LANGUAGE) is None or meta.get(F.IS_GENERATED) is None
        # "replace": a lone surrogate (text decoded with surrogateescape) must not stop the run
        content = doc.text.encode("utf-8", "replace") if needs_content else b""
        # The full repo-relative path, not the basename the original passed: enry's language
        # strategies only look at the basename (same answer on 70k files), but Linguist's vendor
        # and generated rules are path patterns (`node_modules/`, `vendor/`) that need the dirs.
        if meta.get(F.LANGUAGE) is None:
            meta[F.LANGUAGE] = enry().get_language(path, content) or None
        if meta.get(F.EXTENSION) is None:
            meta[F.EXTENSION] = file_extension(path)
        if meta.get(F.IS_VENDOR) is None:
            meta[F.IS_VENDOR] = enry().is_vendor(path)
        if meta.get(F.IS_GENERATED) is None:
            meta[F.IS_GENERATED] = enry().is_generated(path, content)

        language = meta[F.LANGUAGE]
        self.stat_update(f"language_{language or 'unknown'}")
        if language is None:
            return "unknown_language" if self.drop_unknown else None
        if language in self.exclude_languages:
            return "excluded_language"
        return None
