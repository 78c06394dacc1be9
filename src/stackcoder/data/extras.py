"""Plain-text extras (recipe.md §6, "Documentation, StackOverflow, LHQ"): ``stackcoder build --text
KIND=FILE``, records that already hold their training text, into ``DIR/text/<KIND>/``.

``TextInput`` is one ``--text`` argument; ``TextRecordReader`` reads JSON Lines (``.jsonl``,
``.json``, optionally ``.gz``) or Parquet files whose records have a string ``text``, dealing whole
units (a JSONL file, a Parquet row group) round-robin over the tasks, in a fixed order, so the
output does not depend on workers or executor. The text gets ``<|endoftext|>`` at its end if it
lacks one; ``id``, ``repo_name``, ``path`` and ``language`` fields become those columns, every
other field is kept in ``metadata`` (JSON). A record without a usable text is removed (stage
``read``: ``invalid_json``, ``no_text``, ``empty_text``). Which later stages run is the kind's
recipe table (``[text.kinds.<KIND>]`` over ``[text.default]``; docs/sources.md).
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from stackcoder.data import fields as F
from stackcoder.data.parts.records import record, with_eos
from stackcoder.data.step import mark_removed
from stackcoder.errors import UserError

STAGE = "read"
KIND = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_COLUMNS = {F.RECORD_ID: "id", F.REPO_NAME: "repo_name", F.PATH: "path", F.LANGUAGE: "language"}


@dataclass(frozen=True)
class TextInput:
    kind: str  # the part is text/<kind>; its settings: [text.kinds.<kind's first word>] (docs/sources.md)
    path: str
    size_bytes: int

    @property
    def is_parquet(self) -> bool:
        return self.path.endswith(".parquet")


def parse_text_input(spec: str) -> TextInput:
    """``KIND=FILE`` or ``FILE`` (kind: the file name up to its first dot); checked now."""
    kind, sep, path = spec.partition("=")
    if not sep:
        kind, path = Path(spec).name.split(".", 1)[0].lower(), spec
    kind = kind.strip().lower()
    if not KIND.match(kind):
        raise UserError(f"--text {spec!r}: kind {kind!r} must be lower-case letters, digits, '_', '-', '.'")
    file = Path(path)
    if not file.is_file():
        raise UserError(f"--text {spec!r}: no such file {path}")
    name = file.name.lower()
    if not (name.endswith((".jsonl", ".json", ".jsonl.gz", ".json.gz", ".parquet"))):
        raise UserError(
            f"--text {spec!r}: expected .jsonl, .jsonl.gz or .parquet (records with a `text` field)"
        )
    if name.endswith(".parquet"):
        try:
            schema = pq.read_schema(file)
        except Exception as e:  # pyarrow's errors for a file that is not Parquet vary by version
            raise UserError(f"--text {spec!r}: not a Parquet file: {e}") from None
        if "text" not in schema.names:
            raise UserError(f"--text {spec!r}: the Parquet file has no `text` column")
    return TextInput(kind, str(file), file.stat().st_size)


def _units(inputs: list[TextInput]) -> list[tuple[TextInput, int]]:
    """(input, Parquet row group or -1 for a whole JSONL file), in argument order."""
    units: list[tuple[TextInput, int]] = []
    for item in inputs:
        groups = pq.ParquetFile(item.path).metadata.num_row_groups if item.is_parquet else 0
        units += [(item, g) for g in range(groups)] if item.is_parquet else [(item, -1)]
    return units


def _json_lines(path: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, record or the parse error) of a JSON Lines file; blank lines are skipped."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as e:
                yield n, f"line {n}: {e.msg}"
                continue
            yield n, value if isinstance(value, dict) else f"line {n}: not a JSON object"


class TextRecordReader(PipelineStep):
    """Reads the ``--text`` inputs of one kind: task ``r`` takes units ``r, r + T, ...``."""

    type = "📖 - READER"
    name = "📄 Text records"
    stage = STAGE

    def __init__(self, inputs: list[TextInput]):
        super().__init__()
        self.inputs = list(inputs)

    def tasks(self, max_tasks: int) -> int:
        """How many tasks this input splits into: one per unit, at most ``max_tasks``."""
        return max(1, min(len(_units(self.inputs)), max_tasks))

    def document(self, item: TextInput, where: str, value: dict[str, Any] | str) -> Document:
        stem = Path(item.path).name  # the file's name, not its path: outputs name no local folders
        if isinstance(value, str):  # a line that is no JSON object: kept as a removal, without text
            doc = record("", id=f"{stem}:{where}", source=stem)
            mark_removed(doc, STAGE, "invalid_json", value)
            return doc
        fields = {col: value.get(key) for col, key in _COLUMNS.items()}
        fields = {k: (str(v) if v is not None else None) for k, v in fields.items()}
        rest = {k: v for k, v in value.items() if k != "text" and k not in _COLUMNS.values()}
        text = value.get("text")
        doc = record(
            with_eos(text) if isinstance(text, str) and text.strip() else "",
            id=fields.pop(F.RECORD_ID) or f"{stem}:{where}",
            source=stem,
            metadata=rest or None,
            **fields,
        )
        if not isinstance(text, str):
            mark_removed(doc, STAGE, "no_text", None if text is None else type(text).__name__)
        elif not text.strip():
            mark_removed(doc, STAGE, "empty_text")
        return doc

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        for item, group in _units(self.inputs)[rank::world_size]:
            if group < 0:
                rows: Iterator[tuple[str, Any]] = ((str(n), v) for n, v in _json_lines(item.path))
            else:
                table = pq.ParquetFile(item.path).read_row_group(group)
                rows = ((f"{group}.{i}", r) for i, r in enumerate(table.to_pylist()))
            for where, value in rows:
                with self.track_time():
                    doc = self.document(item, where, value)
                self.stat_update("records")
                self.stat_update("bytes", value=doc.metadata[F.LENGTH_BYTES], unit="record")
                yield doc
