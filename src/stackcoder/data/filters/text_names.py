"""Text file names (recipe.md §1.3): "Text: keep only files whose lower-cased name contains
"requirement" or whose stem is one of readme, notes, todo, description, cmakelists".

The name is the path's last component; the stem is that name without its last extension
(``README.txt`` -> ``readme``, ``notes.old.txt`` -> ``notes.old``). Only files enry calls Text are
concerned.
"""

from __future__ import annotations

import posixpath

from datatrove.data import Document

from stackcoder.data import fields as F
from stackcoder.data.step import FileFilter

NAME_CONTAINS = ["requirement"]
STEMS = ["readme", "notes", "todo", "description", "cmakelists"]


class TextNameFilter(FileFilter):
    name = "📝 Text file names"
    stage = "text_names"

    def __init__(self, name_contains: list[str] | None = None, stems: list[str] | None = None):
        super().__init__()
        name_contains = NAME_CONTAINS if name_contains is None else name_contains
        self.name_contains = tuple(s.lower() for s in name_contains)
        self.stems = frozenset(s.lower() for s in (STEMS if stems is None else stems))

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if doc.metadata.get(F.LANGUAGE) != "Text":
            return True
        name = posixpath.basename(doc.metadata.get(F.PATH) or "").lower()
        if any(part in name for part in self.name_contains):
            return True
        if posixpath.splitext(name)[0] in self.stems:
            return True
        return False, "text_filename"
