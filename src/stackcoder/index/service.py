"""``DatasetIndex``: what the CLI and the server ask of a built index — membership with provenance,
search, whois — in one place, so both answer alike."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from stackcoder.data.optout import OptOutMatcher, check_pattern
from stackcoder.errors import UserError
from stackcoder.index.build import INDEX_JSON
from stackcoder.index.fulltext import Filters, TextIndex
from stackcoder.index.portrait import Portrait, Span

# a lone n-gram is a chance hit with probability ``fpr`` (about 1%): the editor is shown one only
# when the full-text index confirms it; two chained are chance at fpr² and are shown as found
SHOWN_UNCONFIRMED_NGRAMS = 2


class DatasetIndex:
    """A directory written by ``stackcoder index build``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not (self.root / INDEX_JSON).is_file():
            raise UserError(
                f"{self.root}: not an index (no {INDEX_JSON}); build one with `stackcoder index build`"
            )
        self.reload()

    def reload(self) -> None:
        self.meta = json.loads((self.root / INDEX_JSON).read_text())
        self.portrait = Portrait(self.root / "portrait")
        self.text = TextIndex(self.root / "text")

    def query(self, text: str, min_ngrams: int = 1, sources: int = 10) -> list[dict[str, Any]]:
        """Each span of ``text`` the Bloom filter finds, with its chance probability and the files
        of the dataset that hold it (up to ``sources``; ``sources_total`` counts them all)."""
        out = []
        for span in self.portrait.query(text, min_ngrams=min_ngrams):
            total, found = self.text.sources(span.text, limit=sources) if sources else (0, [])
            out.append(_span_record(span, total, found))
        return out

    def overlap(self, document: str) -> list[list[int]]:
        """The editor's answer: merged [start, end) ranges of ``document`` that are in the data,
        leaving out lone n-grams the full-text index does not confirm (likely chance hits)."""
        ranges = []
        for span in self.portrait.query(document):
            if span.ngrams >= SHOWN_UNCONFIRMED_NGRAMS or self.text.sources(span.text, limit=1)[0]:
                ranges.append([span.start, span.end])
        return merge_ranges(ranges)

    def search(
        self, query: str, filters: Filters | None = None, limit: int = 10, offset: int = 0
    ) -> dict[str, Any]:
        total, hits = self.text.search(query, filters, limit=limit, offset=offset)
        return {"query": query, "total": total, "offset": offset, "hits": [asdict(h) for h in hits]}

    def whois(self, owner: str) -> dict[str, int]:
        """Repositories (and their file counts) whose owner or owner/name matches ``owner`` — the
        opt-out list's pattern syntax, so what ``whois`` lists is what ``optout add`` would remove."""
        matcher = OptOutMatcher([check_pattern(owner, "whois")])
        counts: Counter[str] = Counter()
        for shard in self.portrait.shards_meta:
            for repo, n in shard["repositories"].items():
                if matcher.matches(repo):
                    counts[repo] += n
        return dict(sorted(counts.items()))


def _span_record(span: Span, total: int, found: list[dict]) -> dict[str, Any]:
    return {
        "start": span.start,
        "end": span.end,
        "ngrams": span.ngrams,
        "chance_probability": span.chance_probability,
        "confirmed": total > 0,
        "sources_total": total,
        "sources": found,
    }


def merge_ranges(ranges: list[list[int]]) -> list[list[int]]:
    merged: list[list[int]] = []
    for s, e in sorted(ranges):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return merged
