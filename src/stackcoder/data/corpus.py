"""Stream training text for the tokenizer (``stackcoder tokenizer train``) out of a built dataset or
parquet/jsonl files. It reads the layout ``build`` writes (``data/layout.py``), so it lives beside
the writer; the tokenizer package takes the texts and knows nothing of datasets.

A dataset built by ``stackcoder build`` has ``DIR/files/*.parquet`` (column ``content``, one source
file per row) and, after the document stage, ``DIR/documents/*.parquet`` (column ``text``, one
repository's training text per row). Documents are preferred: they are what the model is trained on,
``<repo_name>``/``<file_sep>`` included. Nothing is loaded whole: parquet is read in record batches,
jsonl line by line, and the shards are interleaved so that a ``max_bytes`` sample is spread over all
of them rather than taken from the first shard (``build`` writes shards in pipeline order).
"""

from __future__ import annotations

import gzip
import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from stackcoder.data import fields as F
from stackcoder.data.layout import DatasetLayout
from stackcoder.data.readers.table import json_record
from stackcoder.errors import UserError

DOCUMENT_TEXT = "text"  # DIR/documents/*.parquet: one repository's training text
BATCH_ROWS = 256  # rows per read; small enough that one batch of big files stays well under 1 GB
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")


def _is_jsonl(path: Path) -> bool:
    return path.name.endswith(JSONL_SUFFIXES)


def _data_files(root: Path) -> list[Path]:
    files = [p for p in root.rglob("*") if p.is_file() and (p.suffix == ".parquet" or _is_jsonl(p))]
    return sorted(files)


def resolve_inputs(paths: Sequence[str | Path], column: str | None = None) -> list[tuple[Path, str | None]]:
    """Expand DATA arguments into ``(file, column)`` pairs; a ``None`` column is detected per file.

    A directory is a built dataset (``documents/`` when it has parquet files, else ``files/``) or
    else any folder of parquet/jsonl files, searched recursively.
    """
    inputs: list[tuple[Path, str | None]] = []
    for arg in paths:
        path = Path(arg)
        if not path.exists():
            raise UserError(f"{path}: no such file or directory")
        if path.is_file():
            if path.suffix != ".parquet" and not _is_jsonl(path):
                raise UserError(f"{path}: not a .parquet, .jsonl or .jsonl.gz file")
            inputs.append((path, column))
            continue
        layout = DatasetLayout(path)
        for folder, default in ((layout.documents, DOCUMENT_TEXT), (layout.files, F.CONTENT)):
            shards = sorted(folder.glob("*.parquet"))
            if shards:
                inputs += [(shard, column or default) for shard in shards]
                break
        else:
            if layout.is_built():
                # a built dataset with nothing kept: never fall back to removed/*.parquet
                raise UserError(f"{path}: empty dataset (no parquet files in documents/ or files/)")
            files = _data_files(path)
            if not files:
                raise UserError(
                    f"{path}: no parquet or jsonl files (expected a dataset built by `stackcoder build`, "
                    "with documents/ or files/)"
                )
            inputs += [(f, column) for f in files]
    return inputs


def _pick_column(path: Path, available: Sequence[str], column: str | None) -> str:
    if column is None:
        # documents carry `text`, files `content`; a file with neither needs --column
        column = next((c for c in (DOCUMENT_TEXT, F.CONTENT) if c in available), None)
        if column is None:
            raise UserError(f"{path}: no 'text' or 'content' column; choose with --column {list(available)}")
    elif column not in available:
        raise UserError(f"{path}: no column {column!r} (columns: {', '.join(available)})")
    return column


def _parquet_batches(path: Path, column: str | None) -> Iterator[list[str]]:
    try:
        pf = pq.ParquetFile(path)
        name = _pick_column(path, pf.schema_arrow.names, column)
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=[name]):
            yield [t for t in batch.column(0).to_pylist() if t]
    except (pa.ArrowException, OSError) as e:
        raise UserError(f"{path}: cannot read parquet ({e})") from e


def _jsonl_batches(path: Path, column: str | None) -> Iterator[list[str]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    batch: list[str] = []
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        # newline="" keeps "\r\n" inside a JSON string exactly; json.loads still splits records on "\n"
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            record = json_record(line, str(path), lineno)
            if column is None or column not in record:
                column = _pick_column(path, list(record), column)
            text = record.get(column)
            if text:
                batch.append(text)
            if len(batch) >= BATCH_ROWS:
                yield batch
                batch = []
    if batch:
        yield batch


def _round_robin(iterators: list[Iterator[list[str]]]) -> Iterator[list[str]]:
    active = list(iterators)
    while active:
        for it in list(active):
            batch = next(it, None)
            if batch is None:
                active.remove(it)
            elif batch:
                yield batch


class Corpus:
    """The texts of DATA paths, read lazily; iterate to stream them. Counts what was read.

    ``max_bytes`` caps the UTF-8 bytes yielded (the last text is cut to fit), for a training sample.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        column: str | None = None,
        max_bytes: int | None = None,
        progress: bool = False,
    ) -> None:
        if max_bytes is not None and max_bytes <= 0:
            raise UserError(f"--max-bytes must be positive, got {max_bytes}")
        self.inputs = resolve_inputs(paths, column)  # fail on bad paths before any work starts
        self.max_bytes = max_bytes
        self.progress = progress
        self.n_texts = 0
        self.n_bytes = 0

    def _batches(self) -> Iterator[list[str]]:
        readers = [(_jsonl_batches if _is_jsonl(p) else _parquet_batches)(p, col) for p, col in self.inputs]
        return _round_robin(readers)

    def __iter__(self) -> Iterator[str]:
        self.n_texts = self.n_bytes = 0
        bar = tqdm(total=self.max_bytes, unit="B", unit_scale=True, desc="reading", disable=not self.progress)
        with bar:
            for text in itertools.chain.from_iterable(self._batches()):
                data = text.encode("utf-8")
                full = self.max_bytes is not None and self.n_bytes + len(data) >= self.max_bytes
                if full:
                    # cut the last text to fit; "ignore" drops a character split by the cut
                    data = data[: self.max_bytes - self.n_bytes]
                    text = data.decode("utf-8", "ignore")
                    data = text.encode("utf-8")
                if text:
                    self.n_texts += 1
                    self.n_bytes += len(data)
                    bar.update(len(data))
                    yield text
                if full:
                    return
