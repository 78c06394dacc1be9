"""``IndexConfig``: what `stackcoder index build` does (``index/build.py``). Kept apart from
``build.py``, which imports datatrove, so that the CLI's parser reads its defaults without loading it."""

from __future__ import annotations

from dataclasses import dataclass, field

from stackcoder.data.options import RunOptions


@dataclass
class IndexConfig:
    dataset: str  # a directory built by `stackcoder build` (its files/), or a folder of such parquet files
    output: str
    fpr: float = 0.01  # target false-positive rate per n-gram, of the index as a whole
    capacity: int | None = None  # n-grams per shard; default: each shard sized for what it holds
    shards: int | None = None  # default: one per GiB of content, at least one per worker
    overwrite: bool = False
    run: RunOptions = field(default_factory=RunOptions)
