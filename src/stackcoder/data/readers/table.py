"""Parquet or JSONL files of file records in The Stack v2 schema, for re-processing existing data.

Only ``repo_name``, ``path`` and ``content`` are required; the other Stack v2 columns (labels,
counts, ids, dates) are carried over, so later steps keep non-null existing labels. Records are
read in (repo_name, license-like first, path) order so that each repository's files are contiguous,
as the license step needs. That order is per table file: a repository split across two files is
read as two runs of files, and the license step sees each run on its own. Ordering reads the
two key columns first, then one Parquet row group (or one JSONL line) at a time; a table that is
not grouped by repository re-reads row groups and is best sorted beforehand.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Iterator
from datetime import date, datetime
from typing import IO, Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from stackcoder.data import fields as F
from stackcoder.data.readers.raw import TOO_LARGE, RawFile, blob_sha1, file_order
from stackcoder.errors import UserError

_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".jsonl.zst")
TABLE_SUFFIXES = (".parquet", *_JSONL_SUFFIXES)
REQUIRED = (F.REPO_NAME, F.PATH, F.CONTENT)
# pre-existing columns carried over as metadata (everything of FILE_COLUMNS but the required three)
CARRIED = tuple(c for c in F.FILE_COLUMNS if c not in REQUIRED and c != F.SOURCE)
NO_CONTENT = "no_content"  # a record whose content is null
_HUB_HINT = (
    "The Stack v2 on the Hugging Face Hub ships blob ids only; fetch the contents (Software "
    "Heritage's S3 bucket, by blob_id) into a `content` column first"
)


def table_format(path: str) -> str | None:
    low = path.lower()
    if low.endswith(".parquet"):
        return "parquet"
    return "jsonl" if low.endswith(_JSONL_SUFFIXES) else None


def _missing(path: str, columns: set[str]) -> None:
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        hint = f"; {_HUB_HINT}" if F.CONTENT in missing else ""
        raise UserError(f"{path}: no {', '.join(f'`{c}`' for c in missing)} column{hint}")


def _open_jsonl(path: str) -> IO[bytes]:
    """A binary stream of the decompressed lines (.gz and .zst through pyarrow's codecs)."""
    if path.lower().endswith((".gz", ".zst")):
        return io.BufferedReader(pa.input_stream(path, compression="detect"))
    return open(path, "rb")


def json_record(line: bytes | str, path: str, lineno: int) -> dict[str, Any]:
    """One JSONL line as a dict; a ``UserError`` naming ``path:lineno`` when it is not one."""
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raise UserError(f"{path}:{lineno}: not a JSON record ({e})") from e
    if not isinstance(rec, dict):
        raise UserError(f"{path}:{lineno}: not a JSON object")
    return rec


def check_table(path: str, fmt: str) -> None:
    """Validate before the pipeline: readable, with the required columns (first record for JSONL)."""
    try:
        if fmt == "parquet":
            columns = set(pq.read_schema(path).names)
        else:
            with _open_jsonl(path) as f:
                line, lineno = b"", 0
                while not line.strip():
                    line, lineno = f.readline(), lineno + 1
                    if not line:
                        return  # an empty table: no files
                columns = set(json_record(line, path, lineno))
    except (OSError, pa.ArrowException) as e:
        raise UserError(f"{path}: not a readable {fmt} file ({e})") from e
    _missing(path, columns)


def _key(rec: dict[str, Any], path: str, where: str) -> tuple[str, bool, str]:
    repo, name = rec.get(F.REPO_NAME), rec.get(F.PATH)
    if not isinstance(repo, str) or not isinstance(name, str):
        raise UserError(f"{path}:{where}: a record without repo_name or path")
    return (repo, *file_order(name))


def _plain(value: Any) -> Any:
    # Parquet timestamps become the ISO 8601 strings the other kinds record
    return value.isoformat() if isinstance(value, datetime | date) else value


def _raw(rec: dict[str, Any], max_file_bytes: int) -> RawFile:
    columns = {c: _plain(rec[c]) for c in CARRIED if rec.get(c) is not None}
    content = rec.get(F.CONTENT)
    data = content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content
    raw = RawFile(rec[F.PATH], None, 0, columns.get(F.BLOB_ID), repo_name=rec[F.REPO_NAME], columns=columns)
    if data is None:
        raw.skip_reason = NO_CONTENT
    elif len(data) >= max_file_bytes:
        raw.size, raw.skip_reason = len(data), TOO_LARGE
    else:
        raw.data, raw.size, raw.blob_id = data, len(data), raw.blob_id or blob_sha1(data)
    raw.revision_id, raw.revision_date = columns.get(F.REVISION_ID), columns.get(F.REVISION_DATE)
    return raw


def _iter_parquet(path: str, max_file_bytes: int) -> Iterator[RawFile]:
    pf = pq.ParquetFile(path)
    _missing(path, set(pf.schema_arrow.names))
    wanted = [c for c in (*REQUIRED, *CARRIED) if c in pf.schema_arrow.names]
    keys = []
    for rg in range(pf.num_row_groups):
        t = pf.read_row_group(rg, columns=[F.REPO_NAME, F.PATH])
        for j, rec in enumerate(t.to_pylist()):
            keys.append((_key(rec, path, f"row group {rg}, row {j}"), rg, j))
    keys.sort()
    loaded, group = -1, None
    for _, rg, j in keys:
        if rg != loaded:  # one row group in memory at a time
            loaded, group = rg, pf.read_row_group(rg, columns=wanted)
        yield _raw(group.slice(j, 1).to_pylist()[0], max_file_bytes)


def _iter_jsonl(path: str, max_file_bytes: int) -> Iterator[RawFile]:
    with _open_jsonl(path) as stream, tempfile.TemporaryFile() as spool:
        f = stream
        if path.lower().endswith((".gz", ".zst")):
            shutil.copyfileobj(stream, spool)  # decompressed once, so lines can be found by offset
            spool.seek(0)
            f = spool
        keys, offset = [], 0
        for lineno, line in enumerate(f, 1):
            if line.strip():
                keys.append((_key(json_record(line, path, lineno), path, str(lineno)), offset, lineno))
            offset += len(line)
        keys.sort()
        for _, offset, lineno in keys:
            f.seek(offset)
            yield _raw(json_record(f.readline(), path, lineno), max_file_bytes)


def iter_table(path: str, max_file_bytes: int) -> Iterator[RawFile]:
    """The records of a table file, one repository after another; see the module docstring."""
    try:
        if table_format(path) == "parquet":
            yield from _iter_parquet(path, max_file_bytes)
        else:
            yield from _iter_jsonl(path, max_file_bytes)
    except (OSError, pa.ArrowException) as e:
        raise UserError(f"{path}: not a readable table ({e})") from e
