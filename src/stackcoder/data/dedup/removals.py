"""Removal lists: the files a dedup pass removes, one Parquet file per (pass output, shard).

A removal list holds ``file_id`` (``readers.shards.file_id``: shard and row of
``work/filtered/``) and ``detail`` (the survivor, as ``repo_name/path``), sorted by ``file_id``.
The final pass reads only its own shard's lists (``filter.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from stackcoder.atomic import replacing

FILE_ID = "file_id"
DETAIL = "detail"
SCHEMA = pa.schema([(FILE_ID, pa.uint64()), (DETAIL, pa.string())])


def write_removals(path: str | Path, file_ids: np.ndarray, details: list[str]) -> None:
    order = np.argsort(file_ids, kind="stable")
    table = pa.table(
        {
            FILE_ID: pa.array(np.asarray(file_ids, dtype=np.uint64)[order]),
            DETAIL: pa.array([details[i] for i in order], pa.string()),
        },
        schema=SCHEMA,
    )
    with replacing(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_removals(paths: Iterable[str | Path]) -> dict[int, str]:
    """``file_id -> detail`` over all ``paths``; a missing list is an error (its pass did not finish)."""
    removed: dict[int, str] = {}
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"removal list {path} is missing: rerun the dedup passes")
        table = pq.read_table(path)
        removed.update(zip(table[FILE_ID].to_pylist(), table[DETAIL].to_pylist(), strict=True))
    return removed


def survivor_name(repo_name: str | None, path: str | None) -> str:
    return f"{repo_name or ''}/{path or ''}"
