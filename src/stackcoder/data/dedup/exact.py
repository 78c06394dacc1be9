"""Exact deduplication (recipe.md §1 stage 4, recipe.toml ``[dedup.exact]``): one file per blob id.

Files with the same content hash (the git blob id) form a group; the best-ranked one survives
(``ranking.py``: permissive, then no_license, then non_permissive, more stars, more forks, later
revision, then the smallest ``(repo_name, path)``); the others are removed (``exact_duplicate``,
detail: the survivor's ``repo_name/path``). Across the whole dataset, as two datatrove passes
handing work on through ``work/dedup/exact/``:

1. ``ExactDedupRecords``, one task per shard: a record per file (blob id, rank key, file id,
   language, size; no content), partitioned into buckets by a hash of the blob id, one file per
   (bucket, shard): ``records/<bucket>/<shard>.parquet``.
2. ``ExactDedupBuckets``, one task per bucket: that bucket's records from every shard, sorted by
   blob id then rank key; the first of each blob id survives. Writes the losers per shard,
   ``removals/<shard>/<bucket>.parquet``, and ``stats/<bucket>.json``.

A blob id lives in exactly one bucket, so the removals do not depend on the number of buckets.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from stackcoder.atomic import replacing, write_bytes
from stackcoder.data import fields as F
from stackcoder.data.dedup.ranking import RANK_COLUMNS, RANK_INPUTS, rank_key
from stackcoder.data.dedup.removals import survivor_name, write_removals
from stackcoder.data.readers.shards import iter_shard

RECORDS_SCHEMA = pa.schema(
    [
        (F.BLOB_ID, pa.string()),
        (RANK_COLUMNS[0], pa.int64()),
        (RANK_COLUMNS[1], pa.int64()),
        (RANK_COLUMNS[2], pa.int64()),
        (RANK_COLUMNS[3], pa.int64()),
        (F.REPO_NAME, pa.string()),
        (F.PATH, pa.string()),
        (F.FILE_ID, pa.uint64()),
        (F.LANGUAGE, pa.string()),
        (F.LENGTH_BYTES, pa.int64()),
    ]
)
# survivor first: blob id, then the rank key, then file_id for two files equal on all of it
SORT_KEYS = [(F.BLOB_ID, "ascending")] + [(c, "ascending") for c in RANK_COLUMNS] + [(F.FILE_ID, "ascending")]


def exact_dir(dedup_dir: str | Path) -> Path:
    return Path(dedup_dir) / "exact"


def records_path(dedup_dir: str | Path, bucket: int, shard: int) -> Path:
    return exact_dir(dedup_dir) / "records" / f"{bucket:05d}" / f"{shard:05d}.parquet"


def removal_path(dedup_dir: str | Path, shard: int, bucket: int) -> Path:
    return exact_dir(dedup_dir) / "removals" / f"{shard:05d}" / f"{bucket:05d}.parquet"


def bucket_stats_path(dedup_dir: str | Path, bucket: int) -> Path:
    return exact_dir(dedup_dir) / "stats" / f"{bucket:05d}.json"


def blob_bucket(blob_id: str, buckets: int) -> int:
    """The bucket of a blob id: its first 16 hex digits (it is already a SHA-1) modulo ``buckets``."""
    return int(blob_id[:16], 16) % buckets


class ExactDedupRecords(PipelineStep):
    """Task ``r`` reads ``work/filtered/<r>`` (no content) and writes ``records/<b>/<r>`` for every
    bucket ``b`` (empty ones too, so the next pass can tell a finished shard from a missing one)."""

    type = "🫂 - DEDUP"
    name = "🔑 Exact dedup records"
    flush_rows = 1 << 16  # records buffered before they are written out

    def __init__(self, filtered_dir: str, dedup_dir: str, buckets: int):
        super().__init__()
        self.filtered_dir = str(filtered_dir)
        self.dedup_dir = str(dedup_dir)
        self.buckets = buckets

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        columns = [F.BLOB_ID, F.LANGUAGE, F.LENGTH_BYTES, *RANK_INPUTS]
        with contextlib.ExitStack() as stack:
            writers = [
                stack.enter_context(
                    pq.ParquetWriter(
                        stack.enter_context(replacing(records_path(self.dedup_dir, b, rank))),
                        RECORDS_SCHEMA,
                        compression="zstd",
                    )
                )
                for b in range(self.buckets)
            ]
            rows: list[dict] = []
            for record in iter_shard(self.filtered_dir, rank, columns=columns):
                self.stat_update("files")
                if not record[F.BLOB_ID]:  # nothing to compare: such a file is nobody's duplicate
                    self.stat_update("no_blob_id")
                    continue
                with self.track_time():
                    row = dict(zip(RANK_COLUMNS, rank_key(record), strict=True))
                    row.update({k: record[k] for k in (F.BLOB_ID, F.FILE_ID, F.LANGUAGE, F.LENGTH_BYTES)})
                    rows.append(row)
                if len(rows) >= self.flush_rows:
                    self._flush(rows, writers)
                    rows = []
            self._flush(rows, writers)
        return iter(())

    def _flush(self, rows: list[dict], writers: list[pq.ParquetWriter]) -> None:
        if not rows:
            return
        table = pa.Table.from_pylist(rows, schema=RECORDS_SCHEMA)
        buckets = np.array([blob_bucket(r[F.BLOB_ID], self.buckets) for r in rows])
        for bucket, writer in enumerate(writers):
            part = table.filter(pa.array(buckets == bucket))
            if len(part):
                writer.write_table(part)


class ExactDedupBuckets(PipelineStep):
    """Task ``b`` reads ``records/<b>/*`` of every shard and writes ``removals/<s>/<b>`` for every
    shard ``s`` and ``stats/<b>.json``."""

    type = "🫂 - DEDUP"
    name = "🔑 Exact dedup groups"

    def __init__(self, dedup_dir: str, shards: int):
        super().__init__()
        self.dedup_dir = str(dedup_dir)
        self.shards = shards

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        parts = []
        for shard in range(self.shards):
            path = records_path(self.dedup_dir, rank, shard)
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing: the exact dedup record pass did not finish")
            parts.append(pq.read_table(path, schema=RECORDS_SCHEMA))
        with self.track_time():
            table = pa.concat_tables(parts).sort_by(SORT_KEYS) if parts else RECORDS_SCHEMA.empty_table()
            blob = table[F.BLOB_ID]
            n = len(table)
            first = np.ones(n, dtype=bool)  # the first row of each blob id: its survivor
            if n > 1:
                first[1:] = pc.not_equal(blob.slice(1), blob.slice(0, n - 1)).to_numpy(zero_copy_only=False)
            survivor = np.maximum.accumulate(np.where(first, np.arange(n), 0))
            losers = np.flatnonzero(~first)
        file_ids = table[F.FILE_ID].to_numpy()
        survivors = np.unique(survivor[losers])
        named = table.select([F.REPO_NAME, F.PATH]).take(survivors).to_pylist()
        names = {
            i: survivor_name(r[F.REPO_NAME], r[F.PATH])
            for i, r in zip(survivors.tolist(), named, strict=True)
        }
        shard_of = file_ids >> np.uint64(32)
        for shard in range(self.shards):
            mine = losers[shard_of[losers] == shard]
            details = [names[i] for i in survivor[mine].tolist()]
            write_removals(removal_path(self.dedup_dir, shard, rank), file_ids[mine], details)
        self.stat_update("removed", value=len(losers))
        self._write_stats(rank, table, first, survivor, losers)
        return iter(())

    def _write_stats(
        self, bucket: int, table: pa.Table, first: np.ndarray, survivor: np.ndarray, losers: np.ndarray
    ) -> None:
        sizes = np.bincount(survivor, minlength=len(first))[first] if len(first) else np.zeros(0, np.int64)
        languages = table[F.LANGUAGE].to_pylist()
        lengths = table[F.LENGTH_BYTES].to_pylist()
        per_language: dict[str, Counter] = {}
        for i in np.flatnonzero(first)[sizes >= 2].tolist():
            per_language.setdefault(languages[i] or "", Counter())["clusters"] += 1
        for i in losers.tolist():
            lang = per_language.setdefault(languages[i] or "", Counter())
            lang["removed"] += 1
            lang["bytes_removed"] += lengths[i] or 0
        stats = {
            "files": len(first),
            "clusters": int((sizes >= 2).sum()),
            "files_in_clusters": int(sizes[sizes >= 2].sum()),
            "removed": len(losers),
            "bytes_removed": sum(v["bytes_removed"] for v in per_language.values()),
            "cluster_sizes": {str(k): v for k, v in sorted(Counter(sizes[sizes >= 2].tolist()).items())},
            "languages": {k: dict(sorted(v.items())) for k, v in sorted(per_language.items())},
        }
        text = json.dumps(stats, indent=1, sort_keys=True) + "\n"
        write_bytes(bucket_stats_path(self.dedup_dir, bucket), text.encode())
