"""Detected PII spans and how they are applied to a file's text (recipe.md §1 stage 6).

Every detector returns ``Span``s over the original text; the redactor resolves overlaps once and
rewrites the text in one pass, so a replacement is never scanned again and offsets stay valid.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import NamedTuple

# PII kinds: the words used in stats (``pii_<kind>``) and in ``doc.metadata["pii"]``
EMAIL = "email"
KEY = "key"
PASSWORD = "password"
IP_ADDRESS = "ip_address"
NAME = "name"
KINDS = (EMAIL, KEY, PASSWORD, IP_ADDRESS, NAME)

# StarCoder2's special tokens (recipe.md §2); IP addresses get an address instead (ip_addresses.py)
PLACEHOLDERS = {EMAIL: "<EMAIL>", KEY: "<KEY>", PASSWORD: "<PASSWORD>", NAME: "<NAME>"}

# when two detections overlap, the longer wins; at equal length, the more specific kind
_PRIORITY = {KEY: 0, PASSWORD: 1, EMAIL: 2, IP_ADDRESS: 3, NAME: 4}


class Span(NamedTuple):
    start: int
    end: int
    kind: str
    replacement: str


def resolve_overlaps(spans: Iterable[Span]) -> list[Span]:
    """Non-overlapping spans, sorted by start: longest first, then by kind priority, then leftmost."""
    ranked = sorted(spans, key=lambda s: (s.start - s.end, _PRIORITY[s.kind], s.start))
    starts: list[int] = []
    kept: list[Span] = []
    for span in ranked:
        if span.end <= span.start:
            continue
        i = bisect.bisect_right(starts, span.start)
        if i > 0 and kept[i - 1].end > span.start:  # the kept span on the left reaches into it
            continue
        if i < len(kept) and kept[i].start < span.end:  # the kept span on the right starts inside it
            continue
        starts.insert(i, span.start)
        kept.insert(i, span)
    return kept


def apply_spans(text: str, spans: list[Span]) -> str:
    """``text`` with each span (sorted, non-overlapping) replaced by its replacement."""
    parts: list[str] = []
    pos = 0
    for span in spans:
        parts.append(text[pos : span.start])
        parts.append(span.replacement)
        pos = span.end
    parts.append(text[pos:])
    return "".join(parts)
