"""Line cap for data formats (recipe.md §1.3): "Text, JSON, YAML, Web Ontology Language, Graphviz
(DOT): drop files with more than 512 lines".

The reason is `too_many_lines`, the recipe's words for both line caps; the stage
(`data_format_lines` vs `line_count`) tells the two apart in stats and removal records. Lines as
defined in ``lines.py``.
"""

from __future__ import annotations

from datatrove.data import Document

from stackcoder.data import fields as F
from stackcoder.data.filters.lines import count_lines
from stackcoder.data.step import FileFilter

DATA_LANGUAGES = ["Text", "JSON", "YAML", "Web Ontology Language", "Graphviz (DOT)"]


class DataFormatLinesFilter(FileFilter):
    name = "🗃️ Data format lines"
    stage = "data_format_lines"

    def __init__(self, languages: list[str] | None = None, max_lines: int = 512):
        super().__init__()
        self.languages = frozenset(DATA_LANGUAGES if languages is None else languages)
        self.max_lines = max_lines

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        if doc.metadata.get(F.LANGUAGE) not in self.languages or len(doc.text) <= self.max_lines:
            return True
        if count_lines(doc.text) > self.max_lines:
            return False, "too_many_lines"
        return True
