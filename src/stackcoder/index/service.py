"""``DatasetIndex``: what the CLI and the server ask of a built index — membership with provenance,
search, whois — in one place, so both answer alike. The membership rule (``admitted_by``: which
spans of a query are reported as in the data, recipe.md §5) is here and nowhere else."""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from stackcoder.data.optout import OptOutMatcher, check_pattern
from stackcoder.errors import UserError
from stackcoder.index.build import read_index_json
from stackcoder.index.fulltext import Filters, TextIndex
from stackcoder.index.portrait import Portrait, Span

# The membership rule's default. A query tests every offset, so a filter with false-positive rate
# ``fpr`` (about 1%) hits about one offset in a hundred of *any* text: a lone n-gram is noise by
# construction. A chain of ``c`` n-grams is chance at ``fpr ** c``; at 1e-6 per span, random text
# yields about 0.1 chance spans per 100 KB (chains of 3 n-grams at a 1% rate, 4 above it).
DEFAULT_MAX_CHANCE = 1e-6


def admitted_by(span: Span, confirmed: bool | None, max_chance: float) -> str | None:
    """The membership rule, stated once for ``index query``, ``/overlap`` and attribution: a span
    is reported as in the data when the full-text pass found its text in a file (``"confirmed"``),
    or when its chain of n-grams is long enough that chance explains it with probability at most
    ``max_chance`` (``"chain"``); else (None) it is what chance yields on any text. ``confirmed`` is
    None where the full-text pass was not run (a chain admits the span without it)."""
    if confirmed:
        return "confirmed"
    if span.chance_probability <= max_chance:
        return "chain"
    return None


def min_chain(fpr: float, max_chance: float) -> int | None:
    """The shortest chain of n-grams ``admitted_by`` admits unconfirmed at rate ``fpr`` (None:
    none does, only confirmed spans are reported). Counted as ``admitted_by`` tests it, so a rate a
    hair above 1% at 1e-6 says 4, not 3."""
    if max_chance <= 0 or fpr >= 1:
        return None
    c = 1
    while fpr**c > max_chance:
        c += 1
    return c


def check_max_chance(max_chance: float) -> float:
    if not 0 <= max_chance <= 1:
        raise UserError(f"max chance {max_chance} is not a probability: give a value in [0, 1], e.g. 1e-6")
    return max_chance


class DatasetIndex:
    """A directory written by ``stackcoder index build``. ``max_chance``: the membership rule's
    threshold when a call gives none (default ``DEFAULT_MAX_CHANCE``; a server sets it once for
    ``/overlap`` and attribution)."""

    def __init__(self, root: str | Path, max_chance: float | None = None):
        self.root = Path(root)
        read_index_json(self.root)
        self.max_chance = DEFAULT_MAX_CHANCE if max_chance is None else check_max_chance(max_chance)
        self.reload()

    def reload(self) -> None:
        self.meta = read_index_json(self.root)
        self.portrait = Portrait(self.root / "portrait")
        self.text = TextIndex(self.root / "text")

    def query(
        self,
        text: str,
        min_ngrams: int = 1,
        sources: int = 10,
        max_chance: float | None = None,
        all_hits: bool = False,
    ) -> list[dict[str, Any]]:
        """The spans of ``text`` that are in the data by ``admitted_by``, each with its chance
        probability, the rule that admitted it and the files that hold it (up to ``sources``;
        ``sources_total`` counts them all). ``all_hits``: every span the filters find, the ones the
        rule leaves out with ``admitted_by`` None (the raw view). With ``sources=0`` the full-text
        pass runs only where it can change the answer: on spans a chain does not admit."""
        max_chance = self.max_chance if max_chance is None else check_max_chance(max_chance)
        out = []
        for span in self.portrait.query(text, min_ngrams=min_ngrams):
            total, found, confirmed = 0, [], None
            if sources:
                total, found = self.text.sources(span.text, limit=sources)
                confirmed = total > 0
            elif span.chance_probability > max_chance:
                confirmed = self.text.contains(span.text)
            rule = admitted_by(span, confirmed, max_chance)
            if rule or all_hits:
                out.append(_span_record(span, rule, confirmed, total, found))
        return out

    def overlap(self, document: str, max_chance: float | None = None) -> list[list[int]]:
        """The editor's answer: merged [start, end) ranges of ``document`` that are in the data by
        ``admitted_by``. Spans a chain admits are taken as they are; the full-text pass runs on the
        others (chance hits, mostly) except those inside a range already admitted, which cannot
        change the merged answer — in text copied from the data, the lone hits of the other 49
        alignments."""
        max_chance = self.max_chance if max_chance is None else check_max_chance(max_chance)
        spans = self.portrait.query(document)
        ranges = merge_ranges([[s.start, s.end] for s in spans if admitted_by(s, None, max_chance)])
        more = []
        for s in spans:
            if admitted_by(s, None, max_chance) or _inside(ranges, s.start, s.end):
                continue
            if admitted_by(s, self.text.contains(s.text), max_chance):
                more.append([s.start, s.end])
        return merge_ranges(ranges + more)

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


def _span_record(
    span: Span, rule: str | None, confirmed: bool | None, total: int, found: list[dict]
) -> dict[str, Any]:
    return {
        "start": span.start,
        "end": span.end,
        "ngrams": span.ngrams,
        "chance_probability": span.chance_probability,
        "admitted_by": rule,
        "confirmed": confirmed,
        "sources_total": total,
        "sources": found,
    }


def _inside(merged: list[list[int]], start: int, end: int) -> bool:
    """Whether [start, end) lies within one of the sorted, disjoint ``merged`` ranges."""
    i = bisect.bisect_right(merged, [start, float("inf")]) - 1
    return i >= 0 and merged[i][0] <= start and end <= merged[i][1]


def merge_ranges(ranges: list[list[int]]) -> list[list[int]]:
    merged: list[list[int]] = []
    for s, e in sorted(ranges):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return merged


def dataset_whois(dataset: str | Path, owner: str) -> dict[str, int]:
    """``DatasetIndex.whois`` without an index: the repositories of ``owner`` (the opt-out pattern
    syntax) in a built dataset's files, by reading their ``repo_name`` column."""
    import pyarrow.parquet as pq

    from stackcoder.data import fields as F
    from stackcoder.index.build import files_dir

    matcher = OptOutMatcher([check_pattern(owner, "whois")])
    counts: Counter[str] = Counter()
    for f in sorted(files_dir(Path(dataset)).glob("*.parquet")):
        counts.update(r for r in pq.read_table(f, columns=[F.REPO_NAME])[0].to_pylist() if matcher.matches(r))
    return dict(sorted(counts.items()))
