"""``ShardReader``: the files kept by an earlier pass, read back shard by shard.

Part 1 writes one Parquet shard per task (``work/filtered/<rank>.parquet``); every later pass that
works per file (dedup signatures, the final pass) runs with the same number of tasks and task
``r`` reads shard ``r``, so a repository's files stay together and in order. Each file gets a
``file_id`` (shard and row), the key the dedup passes use to say which files to remove.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from stackcoder.data import fields as F


def shard_path(folder: str | Path, rank: int) -> Path:
    return Path(folder) / f"{rank:05d}.parquet"


def file_id(shard: int, row: int) -> int:
    return (shard << 32) | row


def iter_shard(folder: str | Path, rank: int, columns: list[str] | None = None) -> Iterator[dict]:
    """The rows of shard ``rank`` (none if that task kept nothing), each with its ``file_id``."""
    path = shard_path(folder, rank)
    if not path.is_file():
        return
    row = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=256, columns=columns):
        for record in batch.to_pylist():
            record[F.FILE_ID] = file_id(rank, row)
            row += 1
            yield record


class ShardReader(PipelineStep):
    name = "📂 Shards"
    type = "📖 - READER"

    def __init__(self, folder: str):
        super().__init__()
        self.folder = str(folder)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        if data:
            yield from data
        for record in iter_shard(self.folder, rank):
            text = record.pop(F.CONTENT) or ""
            self.stat_update("files")
            yield Document(text=text, id=f"{record[F.REPO_NAME]}:{record[F.PATH]}", metadata=record)
