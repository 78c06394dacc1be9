"""``stackcoder index build``: one pass over a built dataset's files (``DATASET/files/*.parquet``) on
the same executors as the build (local, Ray, Slurm), one task per index shard (``--shards``; by
default one per GiB of content, at least one per worker, at most one per parquet file). Each task writes

    INDEX/portrait/NNNNN.bloom   the Bloom filter of its files' n-grams (memory-mapped bits)
    INDEX/portrait/NNNNN.json    m, k, counts, the measured false-positive rate, and its repositories
                                 with their file counts (for ``whois`` and for opt-out updates)
    INDEX/text/NNNNN/            the tantivy index of its files, content and provenance stored

and ``INDEX/index.json`` sums them up when every task is done (on Slurm, in a last job). A rerun
skips finished tasks (datatrove's completion markers, ``INDEX/logs/index/``), so a killed build resumes.

A query tests every shard, so a chance hit in any of ``S`` shards counts: each shard is sized for
``fpr / S`` so that the index as a whole stays at ``fpr`` (1 − (1 − fpr/S)^S ≤ fpr). That costs
1.44·log2(S) bits per n-gram more than one filter would, which is why shards are few and large.
One filter per shard (rather than one merged filter) is what lets an opt-out rebuild only the
shards that held the repository.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.readers import ParquetReader

from stackcoder.atomic import write_json
from stackcoder.data import fields as F
from stackcoder.data.executor import Pass, run_passes
from stackcoder.data.layout import FILES, LOGS, DatasetLayout
from stackcoder.errors import UserError
from stackcoder.index.config import IndexConfig
from stackcoder.index.fulltext import PROVENANCE, TextShardWriter
from stackcoder.index.portrait import HASH, WIDTH, Portrait, write_shard
from stackcoder.output import OutputRule, json_record, prepare_output

INDEX_JSON = "index.json"
SHARD_BYTES = 1 << 30  # content per shard by default
FORMAT = 2  # 2: the full-text shards index each license id of an expression (``license_id``)
# a rerun after a kill resumes; a finished index, other settings or other files only with --overwrite
OUTPUT = OutputRule("index", f"{LOGS}/settings.json", json_record(indent=1), finished=INDEX_JSON)


def read_index_json(root: Path) -> dict[str, Any]:
    """``index.json`` of the index at ``root``, refusing a directory that is not an index or one
    written in another format (its shards' schema differs from what the readers expect)."""
    if not (root / INDEX_JSON).is_file():
        raise UserError(f"{root}: not an index (no {INDEX_JSON}); build one with `stackcoder index build`")
    meta = json.loads((root / INDEX_JSON).read_text())
    if meta.get("format") != FORMAT:
        raise UserError(
            f"{root}: index format {meta.get('format')}, this stackcoder reads format {FORMAT}: "
            f"rebuild it with `stackcoder index build {meta.get('dataset') or 'DATASET'} --output {root} "
            "--overwrite`"
        )
    return meta


def write_index_shard(out: Path, name: str, files: Iterator[dict], capacity: int | None, fpr: float) -> dict:
    """The Bloom filter and the tantivy index of ``files`` under ``out``, and the shard's metadata
    (written last, as ``portrait/NAME.json``: a shard without it is incomplete)."""
    repos: Counter[str] = Counter()
    content_bytes = 0
    text = TextShardWriter(out / "text" / name)

    def texts() -> Iterator[str]:
        nonlocal content_bytes
        for f in files:
            repos[f[F.REPO_NAME]] += 1
            content_bytes += len(f["content"].encode("utf-8"))
            text.add(f)
            yield f["content"]

    meta = write_shard(out / "portrait", name, texts(), capacity=capacity, fpr=fpr)
    meta.update(files=text.close(), content_bytes=content_bytes, repositories=dict(sorted(repos.items())))
    write_json(out / "portrait" / f"{name}.json", meta)
    return meta


class IndexShardWriter(PipelineStep):
    """Writes one shard of the index from the files of its task."""

    name = "🔎 Index shard"
    type = "🔎 - INDEX"

    def __init__(self, output: str, fpr: float = 0.01, capacity: int | None = None):
        super().__init__()
        self.output, self.fpr, self.capacity = output, fpr, capacity

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        def files() -> Iterator[dict]:
            for doc in data:
                self.stat_update("files")
                rec = {k: doc.metadata.get(k) for k in PROVENANCE}
                rec[F.BLOB_ID] = doc.id
                rec["content"] = doc.text
                yield rec

        with self.track_time():
            meta = write_index_shard(Path(self.output), f"{rank:05d}", files(), self.capacity, self.fpr)
        self.stat_update("ngrams", value=meta["ngrams"])
        self.stat_update("bloom_bytes", value=(meta["m"] + 7) // 8)
        return
        yield


def files_dir(dataset: Path) -> Path:
    """The kept files of a built dataset, or ``dataset`` itself when it is a folder of them."""
    d = DatasetLayout.resolve(dataset, FILES)
    if not d.is_dir() or not any(d.glob("*.parquet")):
        raise UserError(f"{dataset}: no files (*.parquet); give a directory built by `stackcoder build`")
    return d


def build_index(config: IndexConfig) -> dict[str, Any] | None:
    """Index a built dataset; returns what ``index.json`` records (None: submitted to Slurm)."""
    config.run.check()
    if not 0 < config.fpr < 1:
        raise UserError("--fpr must be between 0 and 1 (0.01 is the Data Portraits setting)")
    if config.capacity is not None and config.capacity < 1:
        raise UserError("--capacity must be a positive number of n-grams per shard")
    src = files_dir(Path(config.dataset))
    out = Path(config.output)
    files = sorted(src.glob("*.parquet"))
    if config.shards is not None and config.shards < 1:
        raise UserError("--shards must be at least 1")
    content = sum(_content_bytes(f) for f in files)
    # at least one shard per worker asked for; by default the content alone decides, so that the same
    # dataset gives the same index here, on Ray and on Slurm (which has no "cores here")
    shards = config.shards or max(config.run.workers or 1, -(-content // SHARD_BYTES))
    shards = min(shards, len(files))  # datatrove gives each task whole parquet files
    what = {"dataset": _digest(src), "target_fpr": config.fpr, "capacity": config.capacity, "shards": shards}
    prepare_output(out, what, config.overwrite, OUTPUT)
    steps = [
        ParquetReader(str(src), glob_pattern="*.parquet", text_key="content", id_key=F.BLOB_ID),
        IndexShardWriter(str(out), fpr=config.fpr / shards, capacity=config.capacity),
    ]
    settings = {"target_fpr": config.fpr, "capacity": config.capacity}
    finish = partial(summarize, out, dataset=src, settings=settings)
    if not run_passes(
        [Pass("index", steps, shards)], logs=out / LOGS, options=config.run, finish=finish, title="index"
    ):
        return None
    return json.loads((out / INDEX_JSON).read_text())


def _content_bytes(f: Path) -> int:
    return sum(pq.read_table(f, columns=[F.LENGTH_BYTES])[0].to_pylist())


def summarize(out: Path, dataset: Path | None = None, settings: dict | None = None) -> dict[str, Any]:
    """Write ``index.json`` from the shards' metadata (after a build, and after each update)."""
    old = json.loads((out / INDEX_JSON).read_text()) if (out / INDEX_JSON).is_file() else {}
    portrait = Portrait(out / "portrait")
    shards = portrait.shards_meta
    content = sum(s["content_bytes"] for s in shards)
    repos = {r for s in shards for r in s["repositories"]}
    text_bytes = sum(f.stat().st_size for f in (out / "text").rglob("*") if f.is_file())
    summary = {
        "format": FORMAT,
        "dataset": str(dataset.resolve()) if dataset else old.get("dataset"),
        "dataset_digest": _digest(dataset) if dataset else old.get("dataset_digest"),
        "width": WIDTH,
        "stride": WIDTH,
        "hash": HASH,
        **(settings or {k: old.get(k) for k in ("target_fpr", "capacity")}),
        "shards": len(shards),
        "files": sum(s["files"] for s in shards),
        "repositories": len(repos),
        "content_bytes": content,
        "ngrams": sum(s["ngrams"] for s in shards),
        "portrait_bytes": portrait.nbytes,
        "portrait_share_of_corpus": round(portrait.nbytes / max(1, content), 5),
        "measured_fpr": {
            "per_shard_max": max(s["measured_fpr"] for s in shards),
            "combined": portrait.fpr,  # an n-gram tests present if any shard says so
        },
        "text_index_bytes": text_bytes,
        "opt_out": old.get("opt_out", {"applied": 0}),
    }
    (out / INDEX_JSON).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _digest(src: Path) -> str:
    """sha256 over the parquet shards' names and sizes: which dataset the index was built from,
    without reading it again."""
    h = hashlib.sha256()
    for f in sorted(src.glob("*.parquet")):
        h.update(f"{f.name}\0{f.stat().st_size}\n".encode())
    return h.hexdigest()
