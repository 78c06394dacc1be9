"""Helpers for the dedup tests: part 1's shards written directly, the passes run in order."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from stackcoder.data import fields as F
from stackcoder.data.dedup import dedup_filters, dedup_passes
from stackcoder.data.executor import RunOptions, run_steps
from stackcoder.data.readers.shards import ShardReader, shard_path
from stackcoder.data.recipe import load_recipe
from stackcoder.data.writer import FILES_SCHEMA


def blob_id(content: str) -> str:
    raw = content.encode("utf-8")
    return hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest()


def row(content: str, repo: str, path: str = "src/main.py", language: str = "Python", **meta: Any) -> dict:
    """One row of ``work/filtered/`` (FILES_SCHEMA), permissive unless ``license_type`` says not."""
    record = {
        F.BLOB_ID: blob_id(content),
        F.REPO_NAME: repo,
        F.PATH: path,
        F.CONTENT: content,
        F.LANGUAGE: language,
        F.LICENSE_TYPE: F.PERMISSIVE,
        F.LENGTH_BYTES: len(content.encode("utf-8")),
        F.SOURCE: "test",
    }
    record.update(meta)
    return record


def write_shards(work: Path, shards: list[list[dict]]) -> None:
    """``work/filtered/<r>.parquet`` per non-empty list (an empty list = a task that kept nothing)."""
    folder = work / "filtered"
    folder.mkdir(parents=True, exist_ok=True)
    for rank, rows in enumerate(shards):
        if rows:
            pq.write_table(pa.Table.from_pylist(rows, schema=FILES_SCHEMA), shard_path(folder, rank))


def recipe(exact: bool = True, near: bool = True, **near_overrides: Any) -> dict:
    r = load_recipe(None)
    r["dedup"]["exact"]["enabled"] = exact
    r["dedup"]["near"]["enabled"] = near
    r["dedup"]["near"].update(near_overrides)
    return r


def run_passes(work: Path, shards: int, buckets: int, rcp: dict | None = None, workers: int = 0) -> None:
    """Every dedup pass in order: in this process (``workers=0``), or on datatrove's local executor."""
    for p in dedup_passes(work, shards, buckets, rcp or recipe()):
        if workers:
            logs = work / "logs" / f"{p.name}-{workers}w-{buckets}b"
            run_steps(
                p.steps, tasks=p.tasks, logging_dir=logs, options=RunOptions(workers=workers, progress=False)
            )
        else:
            for rank in range(p.tasks):
                for step in p.steps:
                    step.run(None, rank, p.tasks)


def final_pass(work: Path, shards: int, buckets: int, rcp: dict | None = None) -> dict[tuple, dict]:
    """The final pass's dedup part: (repo, path) -> metadata of every file, removed ones marked."""
    out = {}
    for rank in range(shards):
        docs = ShardReader(str(work / "filtered")).run(None, rank, shards)
        for step in dedup_filters(work, buckets, rcp or recipe()):
            docs = step.run(docs, rank, shards)
        for doc in docs:
            out[(doc.metadata[F.REPO_NAME], doc.metadata[F.PATH])] = doc.metadata
    return out


def removed(files: dict[tuple, dict]) -> dict[tuple, tuple]:
    """(repo, path) -> (stage, reason, detail) of the removed files."""
    return {
        k: (m[F.REMOVED_STAGE], m[F.REMOVED_REASON], m.get(F.REMOVED_DETAIL))
        for k, m in files.items()
        if m.get(F.REMOVED_STAGE)
    }
