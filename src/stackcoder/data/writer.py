"""The last step: kept files to ``files/``, removed files (with stage and reason) to ``removed/``.

Both are zstd Parquet with an explicit schema, so every rank writes the same columns whatever
the first file looked like, and ``datasets.load_dataset("parquet", ...)`` reads them as one table.
Column names are The Stack v2's (recipe.md §1); ``source`` is ours (per-source accounting).
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.writers.parquet import ParquetWriter

from stackcoder.data import fields as F
from stackcoder.data.step import is_removed

OPT_OUT_STAGE = "opt_out"  # the opt-out step's stage: such files are never written

FILES_SCHEMA = pa.schema(
    [
        (F.BLOB_ID, pa.string()),
        (F.REPO_NAME, pa.string()),
        (F.PATH, pa.string()),
        (F.CONTENT, pa.large_string()),
        (F.LANGUAGE, pa.string()),
        (F.EXTENSION, pa.string()),
        (F.IS_VENDOR, pa.bool_()),
        (F.IS_GENERATED, pa.bool_()),
        (F.DETECTED_LICENSES, pa.list_(pa.string())),
        (F.LICENSE_TYPE, pa.string()),
        (F.LENGTH_BYTES, pa.int64()),
        (F.SRC_ENCODING, pa.string()),
        (F.REVISION_ID, pa.string()),
        (F.REVISION_DATE, pa.string()),  # ISO 8601; strings survive any input's date format
        (F.STARS, pa.int64()),
        (F.FORKS, pa.int64()),
        (F.HOST_LICENSE, pa.string()),
        (F.SOURCE, pa.string()),
    ]
)
assert tuple(FILES_SCHEMA.names) == F.FILE_COLUMNS
REMOVED_SCHEMA = FILES_SCHEMA.append(pa.field(F.REMOVED_STAGE, pa.string()))
REMOVED_SCHEMA = REMOVED_SCHEMA.append(pa.field(F.REMOVED_REASON, pa.string()))
REMOVED_SCHEMA = REMOVED_SCHEMA.append(pa.field(F.REMOVED_DETAIL, pa.string()))


def _int_or_none(value: object) -> int | None:
    if value is None or value == "":
        return None
    return int(value)


def file_row(doc: Document) -> dict:
    meta = doc.metadata
    row = {name: meta.get(name) for name in F.FILE_COLUMNS}
    # a skipped file (binary, too large, undecodable) has no text worth keeping
    row[F.CONTENT] = doc.text if doc.text or meta.get(F.SRC_ENCODING) else None
    for name in (F.LENGTH_BYTES, F.STARS, F.FORKS):
        row[name] = _int_or_none(row[name])
    if row[F.DETECTED_LICENSES] is not None:
        row[F.DETECTED_LICENSES] = list(row[F.DETECTED_LICENSES])
    return row


def _removed_row(doc: Document) -> dict:
    row = file_row(doc)
    for name in (F.REMOVED_STAGE, F.REMOVED_REASON, F.REMOVED_DETAIL):
        row[name] = doc.metadata.get(name)
    return row


class DatasetWriter(PipelineStep):
    """Write every file exactly once: to ``kept_dir`` when kept, to ``removed_dir`` otherwise.

    Files removed by an opt-out (stage ``opt_out``) are written nowhere: nothing of an opted-out
    repository may appear in any output; the opt-out step's own counters report how many there were.
    Each pass of a build writes its removals under its own file name prefix (``<prefix>-<rank>``).
    """

    type = "💽 WRITER"
    name = "📒 files + removed"
    # what a kept and a removed row look like; the other sources' writer (``data/parts``) sets its own
    kept_schema: pa.Schema = FILES_SCHEMA
    removed_schema: pa.Schema = REMOVED_SCHEMA

    @staticmethod
    def kept_row(doc: Document) -> dict:
        return file_row(doc)

    @staticmethod
    def removed_row(doc: Document) -> dict:
        return _removed_row(doc)

    def __init__(
        self,
        kept_dir: str,
        removed_dir: str,
        removed_prefix: str = "",
        batch_size: int = 500,
    ):
        super().__init__()
        self.kept_dir = str(kept_dir)
        self.removed_dir = str(removed_dir)
        self.removed_prefix = removed_prefix
        self.batch_size = batch_size

    def _writer(self, folder: str, filename: str, schema: pa.Schema, adapter) -> ParquetWriter:
        return ParquetWriter(
            folder,
            output_filename=filename,
            compression="zstd",
            schema=schema,
            adapter=lambda _self, doc: adapter(doc),
            batch_size=self.batch_size,
            max_file_size=-1,
        )

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        prefix = f"{self.removed_prefix}-" if self.removed_prefix else ""
        kept = self._writer(self.kept_dir, "${rank}.parquet", self.kept_schema, self.kept_row)
        removed = self._writer(
            self.removed_dir, prefix + "${rank}.parquet", self.removed_schema, self.removed_row
        )
        with kept, removed:
            for doc in data:
                with self.track_time():
                    if doc.metadata.get(F.REMOVED_STAGE) == OPT_OUT_STAGE:
                        self.stat_update("opted_out_not_written")
                    elif is_removed(doc):
                        removed.write(doc, rank)
                        self.stat_update("removed")
                    else:
                        kept.write(doc, rank)
                        self.stat_update("kept")
                yield doc
