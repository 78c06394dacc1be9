"""Line count cap (recipe.md §1.3): "drop files with more than 100,000 lines".

Lines as defined in ``lines.py``.
"""

from __future__ import annotations

from datatrove.data import Document

from stackcoder.data.filters.lines import count_lines
from stackcoder.data.step import FileFilter


class LineCountFilter(FileFilter):
    name = "📏 Line count"
    stage = "line_count"

    def __init__(self, max_lines: int = 100_000):
        super().__init__()
        self.max_lines = max_lines

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        # every line holds at least its terminator, so a short file cannot have too many lines
        if len(doc.text) <= self.max_lines:
            return True
        if count_lines(doc.text) > self.max_lines:
            return False, "too_many_lines"
        return True
