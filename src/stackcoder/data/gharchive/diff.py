"""Line ranges and unified diff hunks for pull-request rendering (recipe.md §6).

Hunks are computed with ``difflib`` (the algorithm of Python's ``unified_diff``) with a chosen
number of context lines; nearby changes share a hunk as in ``git diff``. Line numbers count from
the first line the renderer showed of the base file (its window), so a hunk points into the code
the text contains; a whole-file window gives the file's own line numbers.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$")


def changed_range(old: list[str], new: list[str]) -> tuple[int, int] | None:
    """``[start, end)`` of the lines of ``old`` that change (an insertion is an empty range at its
    place); None when the files are equal."""
    lo, hi = None, None
    for tag, i1, i2, _, _ in SequenceMatcher(None, old, new).get_opcodes():
        if tag != "equal":
            lo = i1 if lo is None else min(lo, i1)
            hi = i2 if hi is None else max(hi, i2)
    return None if lo is None else (lo, hi)


def _range(start: int, length: int) -> str:
    # unified diff convention: an empty range names the line before it
    return f"{start + 1 if length else start},{length}"


def unified_hunks(old: list[str], new: list[str], context: int) -> list[str]:
    """Hunks ``@@ -a,b +c,d @@\\n`` + lines prefixed ' ', '-', '+'; no trailing newline."""
    hunks = []
    for group in SequenceMatcher(None, old, new).get_grouped_opcodes(context):
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        lines = [f"@@ -{_range(i1, i2 - i1)} +{_range(j1, j2 - j1)} @@"]
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                lines += [" " + line for line in old[a1:a2]]
                continue
            lines += ["-" + line for line in old[a1:a2]]
            lines += ["+" + line for line in new[b1:b2]]
        hunks.append("\n".join(lines))
    return hunks


def hunk_old_range(hunk: str) -> tuple[int, int] | None:
    """``[start, end)`` (0-based) of the base lines a review comment's ``diff_hunk`` shows."""
    m = _HEADER.match(hunk.split("\n", 1)[0])
    if m is None:
        return None
    start, length = int(m.group(1)), int(m.group(2) or 1)
    first = max(start - 1, 0) if length else start
    return first, first + length


def shift_hunk(hunk: str, lines: int) -> str:
    """``hunk`` with both start lines moved ``lines`` up (window-relative numbering); unchanged when
    that would go below line 1 or the header is not a unified one."""
    first, sep, rest = hunk.partition("\n")
    m = _HEADER.match(first)
    if m is None or lines <= 0 or min(int(m.group(1)), int(m.group(3))) - lines < 1:
        return hunk
    old = f"{int(m.group(1)) - lines}" + (f",{m.group(2)}" if m.group(2) is not None else "")
    new = f"{int(m.group(3)) - lines}" + (f",{m.group(4)}" if m.group(4) is not None else "")
    return f"@@ -{old} +{new} @@{m.group(5)}{sep}{rest}"
