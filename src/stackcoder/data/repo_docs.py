"""Repository-context documents (recipe.md §2, recipe section ``[documents]``): one training
document per repository, its files in seeded random order, with the ``<repo_name>``/path metadata
with probability ``metadata_probability``:

    <repo_name>owner/name<file_sep>path/one.py\\n<code><file_sep>path/two.py\\n<code>…<|endoftext|>
    <file_sep><code><file_sep><code>…<|endoftext|>

Randomness comes from keyed hashes, not from a process-wide RNG: a file's place is the sort order
of blake2b(seed, repo_name, path), a part's metadata draw is blake2b(seed, repo_name, part). So a
document depends only on its repository's files, never on task layout, input order, process or
Python version (docs/documents.md).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from stackcoder.atomic import temporary_name
from stackcoder.data import fields as F
from stackcoder.data.layout import DatasetLayout
from stackcoder.data.step import is_removed
from stackcoder.tokenizer.special_tokens import EOS, FILE_SEP, REPO_NAME

DOCUMENTS_SCHEMA = pa.schema(
    [
        ("repo_name", pa.string()),
        ("part", pa.int32()),  # 0-based; a repository larger than max_document_bytes has several
        ("n_parts", pa.int32()),
        ("text", pa.large_string()),
        ("has_metadata", pa.bool_()),  # text starts with <repo_name> and names each file's path
        ("n_files", pa.int32()),
        ("paths", pa.list_(pa.string())),  # in text order, so files stay traceable without metadata
        ("languages", pa.list_(pa.string())),  # distinct, sorted
        ("license_type", pa.string()),  # the most restrictive class among the part's files
    ]
)
# most restrictive last: a part is labeled with its worst file, so "permissive" means all of it is
_LICENSE_RANK = {F.PERMISSIVE: 0, F.NO_LICENSE: 1, F.NON_PERMISSIVE: 2}
_ROW_GROUP_BYTES = 64 << 20  # flush buffered rows past this much text: bounded memory, few row groups


def _unit(*parts: object) -> float:
    """A uniform draw in [0, 1) that depends only on ``parts`` (same in every process and version)."""
    digest = hashlib.blake2b("\0".join(map(str, parts)).encode("utf-8"), digest_size=8)
    return int.from_bytes(digest.digest(), "big") / 2**64


@dataclass
class _File:
    path: str
    text: str
    n_bytes: int
    language: str | None
    license_type: str | None


def shuffle_files(files: list[_File], repo_name: str, seed: int) -> list[_File]:
    """The repository's files in its seeded random order: sorted by a keyed hash of the path, so the
    order does not depend on the input order, and removing a file leaves the others' order alone."""
    return sorted(files, key=lambda f: (_unit(seed, "order", repo_name, f.path), f.path, f.text))


def split_parts(files: list[_File], max_bytes: int) -> list[list[_File]]:
    """Consecutive runs of files whose contents total at most ``max_bytes`` (UTF-8); a file larger
    than that is a part of its own. Separators and paths are not counted, so the split points do
    not depend on the metadata draw."""
    parts: list[list[_File]] = []
    size = 0
    for f in files:
        if not parts or (parts[-1] and size + f.n_bytes > max_bytes):
            parts.append([])
            size = 0
        parts[-1].append(f)
        size += f.n_bytes
    return parts


def render(repo_name: str, files: list[_File], with_metadata: bool) -> str:
    """One document's text in StarCoder2's repository format (recipe.md §2)."""
    if with_metadata:
        body = "".join(f"{FILE_SEP}{f.path}\n{f.text}" for f in files)
        return f"{REPO_NAME}{repo_name}{body}{EOS}"
    return "".join(f"{FILE_SEP}{f.text}" for f in files) + EOS


def _license_type(files: list[_File]) -> str | None:
    classes = {f.license_type for f in files}
    if not classes <= _LICENSE_RANK.keys():
        return None  # a file without a known class: no honest label for the whole part
    return max(classes, key=_LICENSE_RANK.__getitem__)


def check_documents(metadata_probability: float, max_document_bytes: int) -> None:
    """The ``[documents]`` ranges (``load_recipe`` checks them before a build writes anything)."""
    if not 0.0 <= metadata_probability <= 1.0:
        raise ValueError(
            f"[documents] metadata_probability must be within [0, 1], not {metadata_probability}"
        )
    if max_document_bytes < 1:
        raise ValueError(f"[documents] max_document_bytes must be positive, not {max_document_bytes}")


class RepositoryDocuments(PipelineStep):
    """Write ``DIR/documents/<rank>.parquet`` from the live files of the final stream.

    Runs after the ``DatasetWriter``; every file passes through unchanged. Removed files are
    ignored. A repository's files must be contiguous in the stream (one task reads whole
    repositories); a repository (source and name) seen again after another one started is an
    error, not a silently split document. The repository being assembled is held in memory.
    """

    type = "📑 DOCUMENTS"
    name = "📑 repository documents"

    def __init__(
        self,
        output_dir: str,
        metadata_probability: float = 0.5,  # recipe.md §2
        seed: int = 0,
        max_document_bytes: int = 50_000_000,  # ours: the split size is unpublished
    ):
        super().__init__()
        check_documents(metadata_probability, max_document_bytes)
        self.output_dir = str(output_dir)
        self.metadata_probability = metadata_probability
        self.seed = seed
        self.max_document_bytes = max_document_bytes

    def documents(self, repo_name: str, files: list[_File]) -> Iterator[dict[str, Any]]:
        """The rows of one repository: one per part."""
        parts = split_parts(shuffle_files(files, repo_name, self.seed), self.max_document_bytes)
        for i, part in enumerate(parts):
            # each part is its own training example, so each gets its own draw
            with_metadata = _unit(self.seed, "metadata", repo_name, i) < self.metadata_probability
            yield {
                "repo_name": repo_name,
                "part": i,
                "n_parts": len(parts),
                "text": render(repo_name, part, with_metadata),
                "has_metadata": with_metadata,
                "n_files": len(part),
                "paths": [f.path for f in part],
                "languages": sorted({f.language for f in part if f.language}),
                "license_type": _license_type(part),
            }

    def _account(self, row: dict[str, Any], n_bytes: int) -> None:
        if row["part"] == 0:
            self.stat_update("documents")
            if row["n_parts"] > 1:
                self.stat_update("split_documents")
        self.stat_update("parts")
        self.stat_update("files", value=row["n_files"], unit="part")
        self.stat_update("bytes", value=n_bytes, unit="part")
        self.stat_update("with_metadata" if row["has_metadata"] else "without_metadata")

    def _emit(self, key: tuple[str, str] | None, files: list[_File], out: _ShardWriter) -> None:
        if key is None or not files:
            return
        for row in self.documents(key[1], files):
            n_bytes = len(row["text"].encode("utf-8"))
            self._account(row, n_bytes)
            out.add(row, n_bytes)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        # a repository is its (source, repo_name): two sources may name their repository alike
        # (two versions of one package), and each is a repository of its own
        done: set[tuple[str, str]] = set()
        key: tuple[str, str] | None = None
        files: list[_File] = []
        with _ShardWriter(DatasetLayout(self.output_dir).documents, rank) as out:
            for doc in data:
                if not is_removed(doc):
                    with self.track_time():
                        this = (doc.metadata.get(F.SOURCE) or "", doc.metadata.get(F.REPO_NAME) or "")
                        if this != key:
                            self._emit(key, files, out)
                            if key is not None:
                                done.add(key)
                            if this in done:
                                raise ValueError(
                                    f"repository {this[1]!r} of source {this[0]!r} is not contiguous in the "
                                    f"stream of task {rank}: its documents would be split in two"
                                )
                            key, files = this, []
                        text = doc.text or ""
                        files.append(
                            _File(
                                path=doc.metadata.get(F.PATH) or "",
                                text=text,
                                n_bytes=len(text.encode("utf-8")),
                                language=doc.metadata.get(F.LANGUAGE),
                                license_type=doc.metadata.get(F.LICENSE_TYPE),
                            )
                        )
                yield doc
            with self.track_time():
                self._emit(key, files, out)
            out.commit()


class _ShardWriter:
    """``<folder>/<rank>.parquet``, complete or not at all: rows go to a hidden temporary file
    (which no ``*.parquet`` glob matches) that is renamed when the task finishes, and removed if
    it does not. A task killed with ``kill -9`` leaves at most that temporary file; its rerun
    overwrites it."""

    def __init__(self, folder: Path, rank: int):
        folder.mkdir(parents=True, exist_ok=True)
        self.final = folder / f"{rank:05d}.parquet"  # datatrove's ${rank}, as files/ and removed/ are named
        self.tmp = temporary_name(self.final)
        self.rows: list[dict[str, Any]] = []
        self.buffered = 0

    def __enter__(self) -> _ShardWriter:
        self.writer = pq.ParquetWriter(self.tmp, DOCUMENTS_SCHEMA, compression="zstd")
        return self

    def add(self, row: dict[str, Any], n_bytes: int) -> None:
        self.rows.append(row)
        self.buffered += n_bytes
        if self.buffered >= _ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=DOCUMENTS_SCHEMA))
        self.rows, self.buffered = [], 0

    def commit(self) -> None:
        self._flush()
        self.writer.close()
        os.replace(self.tmp, self.final)

    def __exit__(self, *exc: object) -> None:
        if self.tmp.exists():  # not committed: an error, or the stream was abandoned
            self.writer.close()
            self.tmp.unlink()


def summarize_documents(output_dir: str | Path) -> dict[str, Any]:
    """Counts over ``DIR/documents/``: documents (repositories), parts, files, bytes of text and
    the parts with and without metadata, for ``stats.json`` and the dataset card."""
    out = {"documents": 0, "parts": 0, "split_documents": 0, "files": 0, "bytes": 0, "with_metadata": 0}
    columns = ["part", "n_parts", "n_files", "has_metadata", "text"]
    for path in sorted(DatasetLayout(output_dir).documents.glob("*.parquet")):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=256, columns=columns):
            first = pc.equal(batch["part"], 0)
            out["documents"] += pc.sum(first).as_py() or 0
            out["split_documents"] += pc.sum(pc.and_(first, pc.greater(batch["n_parts"], 1))).as_py() or 0
            out["parts"] += batch.num_rows
            out["files"] += pc.sum(batch["n_files"]).as_py() or 0
            out["bytes"] += pc.sum(pc.binary_length(batch["text"])).as_py() or 0
            out["with_metadata"] += pc.sum(batch["has_metadata"]).as_py() or 0
    out["without_metadata"] = out["parts"] - out["with_metadata"]
    return out
