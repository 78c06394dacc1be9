"""Alphabetic fraction (recipe.md §1.3): "drop files with < 25% alphabetic characters
(alphanumeric for Motorola 68K Assembly and WebAssembly)".

The fraction is over all characters of the file, whitespace and newlines included, with Python's
``str.isalpha`` / ``str.isalnum`` deciding per character, as BigCode's code computes it
(bigcode-dataset, preprocessing/filtering.py: ``sum(map(str.isalpha, content)) / len(content)``).
An empty file has no fraction and is kept.
"""

from __future__ import annotations

import re
import string

from datatrove.data import Document

from stackcoder.data import fields as F
from stackcoder.data.step import FileFilter

ALNUM_LANGUAGES = ["Motorola 68K Assembly", "WebAssembly"]

_ASCII_ALPHA = string.ascii_letters.encode()
_ASCII_ALNUM = (string.ascii_letters + string.digits).encode()
_ASCII_RUNS = re.compile(r"[\x00-\x7f]+")


def count_chars(text: str, alnum: bool = False) -> int:
    """How many characters of ``text`` are alphabetic (or alphanumeric): ``str.isalpha`` per char.

    ``bytes.translate`` counts the ASCII part at memory speed; only non-ASCII characters (rare in
    code) go through the per-character Python test.
    """
    ascii_bytes = text.encode("ascii", "ignore")  # exactly the ASCII characters, in order
    n = len(ascii_bytes) - len(ascii_bytes.translate(None, _ASCII_ALNUM if alnum else _ASCII_ALPHA))
    if len(ascii_bytes) < len(text):
        rest = _ASCII_RUNS.sub("", text)
        n += sum(map(str.isalnum if alnum else str.isalpha, rest))
    return n


class AlphaFilter(FileFilter):
    name = "🔡 Alpha fraction"
    stage = "alpha"

    def __init__(self, min_alpha_fraction: float = 0.25, alnum_languages: list[str] | None = None):
        super().__init__()
        self.min_alpha_fraction = min_alpha_fraction
        self.alnum_languages = frozenset(ALNUM_LANGUAGES if alnum_languages is None else alnum_languages)

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        text = doc.text
        if not text:
            return True
        alnum = doc.metadata.get(F.LANGUAGE) in self.alnum_languages
        if count_chars(text, alnum) < self.min_alpha_fraction * len(text):
            return False, "low_alpha"
        return True
