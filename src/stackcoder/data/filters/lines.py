"""What the line filters call a line, defined once (recipe.md §1.3 does not say; docs/filters.md).

A line is a piece of ``str.splitlines()``, as in BigCode's basic filter (bigcode-dataset,
preprocessing/filtering.py, ``add_stats``): every Unicode line boundary ends a line, the
terminator is not part of its length, and a final newline does not open an empty last line.
An empty file has no lines.
"""

from __future__ import annotations


def count_lines(text: str) -> int:
    return len(text.splitlines())


def line_lengths(text: str) -> list[int]:
    return list(map(len, text.splitlines()))
