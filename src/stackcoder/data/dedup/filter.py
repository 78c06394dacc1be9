"""The dedup passes' verdicts applied in the final pass (recipe.md §1 stages 4-5).

Task ``r`` of the final pass reads shard ``r`` of ``work/filtered/`` (``ShardReader``, which sets
``file_id``); these steps load only that shard's removal lists and mark each listed file removed,
naming its survivor. Two steps, one per recipe stage, so each has its own line in the funnel.
With ``enabled=False`` (its dedup is off in the recipe) a step loads nothing and removes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from datatrove.data import Document, DocumentsPipeline

from stackcoder.data import fields as F
from stackcoder.data.dedup import exact, minhash
from stackcoder.data.dedup.removals import read_removals
from stackcoder.data.step import FileStep


class DedupFilter(FileStep):
    """Removes the files on this shard's removal lists, with ``reason`` and the survivor."""

    reason: ClassVar[str] = ""

    def __init__(self, dedup_dir: str, enabled: bool = True):
        super().__init__()
        self.dedup_dir = str(dedup_dir)
        self.enabled = enabled
        self._removed: dict[int, str] = {}

    def removal_paths(self, shard: int) -> list[Path]:
        raise NotImplementedError

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        self._removed = read_removals(self.removal_paths(rank)) if self.enabled else {}
        yield from super().run(data, rank, world_size)

    def process(self, doc: Document) -> tuple[str, str] | None:
        survivor = self._removed.get(doc.metadata.get(F.FILE_ID))
        return None if survivor is None else (self.reason, survivor)


class ExactDedupFilter(DedupFilter):
    name = "🔑 Exact dedup"
    stage = "exact_dedup"
    reason = "exact_duplicate"

    def __init__(self, dedup_dir: str, buckets: int, enabled: bool = True):
        super().__init__(dedup_dir, enabled)
        self.buckets = buckets

    def removal_paths(self, shard: int) -> list[Path]:
        return [exact.removal_path(self.dedup_dir, shard, b) for b in range(self.buckets)]


class NearDedupFilter(DedupFilter):
    name = "🎯 Near dedup"
    stage = "near_dedup"
    reason = "near_duplicate"

    def removal_paths(self, shard: int) -> list[Path]:
        return [minhash.removal_path(self.dedup_dir, shard)]
