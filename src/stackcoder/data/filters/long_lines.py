"""Line length limits (recipe.md §1.3): "drop files with average line length > 100 or longest line
> 1,000 characters — except HTML, JSON, Markdown, Roff, Roff Manpage, SMT, TeX, Text, XML, which are
dropped only for a line > 100,000 characters".

Lines as defined in ``lines.py``; the average is the mean of the line lengths (terminators not
counted). When both limits are crossed the reason is `max_line_length`, checked first as in
BigCode's ``basic_filters``. An empty file has no lines and is kept.
"""

from __future__ import annotations

from datatrove.data import Document

from stackcoder.data import fields as F
from stackcoder.data.filters.lines import line_lengths
from stackcoder.data.step import FileFilter

MARKUP_LANGUAGES = ["HTML", "JSON", "Markdown", "Roff", "Roff Manpage", "SMT", "TeX", "Text", "XML"]


class LongLineFilter(FileFilter):
    name = "📐 Long lines"
    stage = "long_lines"

    def __init__(
        self,
        max_avg_line_length: int = 100,
        max_line_length: int = 1_000,
        markup_languages: list[str] | None = None,
        markup_max_line_length: int = 100_000,
    ):
        super().__init__()
        self.max_avg_line_length = max_avg_line_length
        self.max_line_length = max_line_length
        self.markup_languages = frozenset(MARKUP_LANGUAGES if markup_languages is None else markup_languages)
        self.markup_max_line_length = markup_max_line_length

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        text = doc.text
        markup = doc.metadata.get(F.LANGUAGE) in self.markup_languages
        longest_allowed = self.markup_max_line_length if markup else self.max_line_length
        if markup and len(text) <= longest_allowed:
            return True  # no line is longer than the file: skip the split
        lengths = line_lengths(text)
        if not lengths:
            return True
        if max(lengths) > longest_allowed:
            return False, "max_line_length"
        # mean > limit, in integers so that a mean of exactly the limit is never rounded over it
        if not markup and sum(lengths) > self.max_avg_line_length * len(lengths):
            return False, "avg_line_length"
        return True
