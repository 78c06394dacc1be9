"""A part's records: the columns every source other than files writes, and how a record is made.

One record is one training text of its source (a notebook as a script, an issue, a documentation
page), with the file columns that apply to it. ``record`` builds the datatrove ``Document`` a source
hands on; ``PART_SCHEMA`` is what ``DIR/<part>/*.parquet`` holds, ``REMOVED_PART_SCHEMA`` what
``DIR/removed/<part>/*.parquet`` holds. Between passes (``work/<part>/filtered/``) the text is stored
under ``content``, as file shards store theirs, so the dedup passes and ``ShardReader`` read part
shards unchanged (``WORK_SCHEMA``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pyarrow as pa
from datatrove.data import Document

from stackcoder.data import fields as F
from stackcoder.tokenizer.special_tokens import EOS

_FIELDS = [
    (F.RECORD_ID, pa.string()),
    (F.TEXT, pa.large_string()),
    (F.REPO_NAME, pa.string()),
    (F.PATH, pa.string()),
    (F.NUMBER, pa.int64()),  # issues and pull requests: their number (with repo_name, the page)
    (F.LANGUAGE, pa.string()),
    (F.BLOB_ID, pa.string()),  # git blob id of the text (UTF-8): what exact dedup compares
    (F.LENGTH_BYTES, pa.int64()),  # UTF-8 bytes of the text
    (F.DETECTED_LICENSES, pa.list_(pa.string())),
    (F.LICENSE_TYPE, pa.string()),
    (F.REVISION_ID, pa.string()),
    (F.REVISION_DATE, pa.string()),
    (F.STARS, pa.int64()),
    (F.FORKS, pa.int64()),
    (F.HOST_LICENSE, pa.string()),
    (F.SOURCE, pa.string()),
    (F.RECORD_METADATA, pa.string()),
]
PART_SCHEMA = pa.schema(_FIELDS)
PART_COLUMNS = tuple(PART_SCHEMA.names)
REMOVED_PART_SCHEMA = PART_SCHEMA.append(pa.field(F.REMOVED_STAGE, pa.string()))
REMOVED_PART_SCHEMA = REMOVED_PART_SCHEMA.append(pa.field(F.REMOVED_REASON, pa.string()))
REMOVED_PART_SCHEMA = REMOVED_PART_SCHEMA.append(pa.field(F.REMOVED_DETAIL, pa.string()))
WORK_SCHEMA = pa.schema([(F.CONTENT if name == F.TEXT else name, t) for name, t in _FIELDS])

_INTS = (F.NUMBER, F.LENGTH_BYTES, F.STARS, F.FORKS)


def git_blob_id(data: bytes) -> str:
    """The git SHA-1 of ``data`` as a blob, as The Stack v2's ``blob_id``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def with_eos(text: str) -> str:
    """``text`` ending with exactly one ``<|endoftext|>`` (recipe.md §2, §6: every training text does)."""
    return text if text.endswith(EOS) else text + EOS


def record(
    text: str,
    *,
    id: str,
    source: str,
    repo_name: str | None = None,
    path: str | None = None,
    language: str | None = None,
    metadata: dict[str, Any] | None = None,
    **columns: Any,
) -> Document:
    """A part record: ``text`` is the rendered training text (``with_eos`` is the caller's choice);
    ``columns`` are any other of ``PART_COLUMNS`` (``license_type``, ``revision_date``, ...).
    ``blob_id`` and ``length_bytes`` are computed from the text."""
    unknown = set(columns) - set(PART_COLUMNS)
    if unknown:
        raise ValueError(f"not part columns: {sorted(unknown)}")
    data = text.encode("utf-8", "surrogatepass")
    meta = {
        **columns,
        F.RECORD_ID: id,
        F.SOURCE: source,
        F.REPO_NAME: repo_name,
        F.PATH: path,
        F.LANGUAGE: language,
        F.BLOB_ID: git_blob_id(data) if text else None,
        F.LENGTH_BYTES: len(data),
        F.RECORD_METADATA: json.dumps(metadata, sort_keys=True, ensure_ascii=False, default=str)
        if metadata
        else None,
    }
    return Document(text=text, id=id, metadata=meta)


def part_row(doc: Document) -> dict:
    """A ``PART_SCHEMA`` row of a record (a record read back from a work shard has its fields too)."""
    meta = doc.metadata
    row = {name: meta.get(name) for name in PART_COLUMNS}
    row[F.RECORD_ID] = meta.get(F.RECORD_ID) or doc.id
    row[F.TEXT] = doc.text
    for name in _INTS:
        value = row[name]
        row[name] = None if value is None or value == "" else int(value)
    if row[F.DETECTED_LICENSES] is not None:
        row[F.DETECTED_LICENSES] = list(row[F.DETECTED_LICENSES])
    return row


def work_row(doc: Document) -> dict:
    row = part_row(doc)
    row[F.CONTENT] = row.pop(F.TEXT)
    return row


def removed_part_row(doc: Document) -> dict:
    row = part_row(doc)
    for name in (F.REMOVED_STAGE, F.REMOVED_REASON, F.REMOVED_DETAIL):
        row[name] = doc.metadata.get(name)
    return row
