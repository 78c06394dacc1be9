"""``PartWriter``: a part's last step, the ``DatasetWriter`` of records instead of files.

Kept records go to the kept folder (``work/<part>/filtered/`` between passes, with the text under
``content``; ``DIR/<part>/`` at the end, with ``text``), removed ones to ``DIR/removed/<part>/`` with
their stage and reason. ``PartSink`` is the same pair of writers for a step that makes records of
another pass's data (notebooks come out of the file filter pass) and writes them itself.
"""

from __future__ import annotations

import pyarrow as pa
from datatrove.data import Document
from datatrove.pipeline.writers.parquet import ParquetWriter

from stackcoder.data import fields as F
from stackcoder.data.parts.records import (
    PART_SCHEMA,
    REMOVED_PART_SCHEMA,
    WORK_SCHEMA,
    part_row,
    removed_part_row,
    work_row,
)
from stackcoder.data.step import is_removed
from stackcoder.data.writer import OPT_OUT_STAGE, DatasetWriter


class PartWriter(DatasetWriter):
    """Write every record once: kept to ``kept_dir``, removed to ``removed_dir`` (opted-out: nowhere).

    ``work=True`` writes the kept records as a work shard (``WORK_SCHEMA``) for the next pass."""

    name = "📒 records + removed"
    removed_schema = REMOVED_PART_SCHEMA

    def __init__(
        self,
        kept_dir: str,
        removed_dir: str,
        removed_prefix: str = "",
        work: bool = False,
        batch_size: int = 500,
    ):
        super().__init__(kept_dir, removed_dir, removed_prefix, batch_size)
        self.work = work

    @property
    def kept_schema(self) -> pa.Schema:  # type: ignore[override]
        return WORK_SCHEMA if self.work else PART_SCHEMA

    def kept_row(self, doc: Document) -> dict:  # type: ignore[override]
        return work_row(doc) if self.work else part_row(doc)

    @staticmethod
    def removed_row(doc: Document) -> dict:
        return removed_part_row(doc)


class PartSink:
    """A ``PartWriter``'s two files for one rank, written from inside another step:
    ``with PartSink(...) as sink: sink.write(doc)``. Opted-out records are not written."""

    def __init__(self, kept_dir: str, removed_dir: str, removed_prefix: str, rank: int, work: bool = True):
        self.writer = PartWriter(kept_dir, removed_dir, removed_prefix, work=work)
        self.rank = rank
        self.kept: ParquetWriter | None = None
        self.removed: ParquetWriter | None = None

    def __enter__(self) -> PartSink:
        w = self.writer
        prefix = f"{w.removed_prefix}-" if w.removed_prefix else ""
        self.kept = w._writer(w.kept_dir, "${rank}.parquet", w.kept_schema, w.kept_row)
        self.removed = w._writer(w.removed_dir, prefix + "${rank}.parquet", w.removed_schema, w.removed_row)
        self.kept.__enter__()
        self.removed.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        assert self.kept is not None and self.removed is not None
        try:
            self.kept.__exit__(*exc)
        finally:
            self.removed.__exit__(*exc)

    def write(self, doc: Document) -> str:
        """Write ``doc``; returns where it went: ``kept``, ``removed`` or ``opted_out``."""
        assert self.kept is not None and self.removed is not None
        if doc.metadata.get(F.REMOVED_STAGE) == OPT_OUT_STAGE:
            return "opted_out"
        if is_removed(doc):
            self.removed.write(doc, self.rank)
            return "removed"
        self.kept.write(doc, self.rank)
        return "kept"
