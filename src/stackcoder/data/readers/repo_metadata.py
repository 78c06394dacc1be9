"""``--repo-metadata FILE``: the repository-level fields that ``sources.py:join_repo_metadata`` joins
onto the SOURCES.

The Stack v2 took stars, forks and the host's license from GitHub metadata (GH Archive); the
license step uses the host license and exact/near dedup rank survivors by stars and forks
(recipe.md §1). The file is CSV or JSONL, one row per repository:

- ``repo_name`` (required);
- ``source`` (optional): a path or entry name picking the SOURCE the row is for; it also sets that
  source's repo_name. Rows without it join on the repo_name each source got from its own rules;
- ``stars``/``star_events_count``, ``forks``/``fork_events_count``, ``license``/``gha_license_id``
  (an SPDX id), ``revision_date`` (ISO 8601). Other columns are ignored, with one warning.

A table SOURCE carries these fields per record; a row applies to a whole table only via ``source``.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stackcoder.data import fields as F
from stackcoder.data.readers.table import json_record
from stackcoder.errors import UserError

log = logging.getLogger(__name__)

REPO_NAME, SOURCE = "repo_name", "source"
ALIASES = {
    "stars": F.STARS,
    F.STARS: F.STARS,
    "forks": F.FORKS,
    F.FORKS: F.FORKS,
    "license": F.HOST_LICENSE,
    F.HOST_LICENSE: F.HOST_LICENSE,
    F.REVISION_DATE: F.REVISION_DATE,
}


@dataclass
class MetadataRow:
    line: int
    repo_name: str
    source: str | None
    fields: dict[str, Any]


def _value(column: str, value: Any, where: str) -> Any:
    field = ALIASES[column]
    if field in (F.STARS, F.FORKS):
        try:
            n = int(value) if not isinstance(value, bool | float) else None
        except ValueError:
            n = None
        if n is None or n < 0:
            raise UserError(f"{where}: `{column}` must be a count, got {value!r}")
        return n
    if not isinstance(value, str):
        raise UserError(f"{where}: `{column}` must be a string, got {value!r}")
    if field == F.REVISION_DATE:
        try:
            datetime.fromisoformat(value)
        except ValueError as e:
            raise UserError(f"{where}: `{column}` is not an ISO 8601 date: {value!r}") from e
    return value


def _records(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    if path.lower().endswith(".csv"):
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or REPO_NAME not in reader.fieldnames:
                raise UserError(f"{path}:1: the CSV header has no `repo_name` column")
            for rec in reader:
                if None in rec:  # more cells than the header has names
                    raise UserError(f"{path}:{reader.line_num}: more values than columns")
                yield reader.line_num, {k: v for k, v in rec.items() if v not in ("", None)}
    elif path.lower().endswith((".jsonl", ".ndjson")):
        with open(path, "rb") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                rec = json_record(line, path, lineno)
                yield lineno, {k: v for k, v in rec.items() if v is not None}
    else:
        raise UserError(f"{path}: --repo-metadata must be a .csv or .jsonl file")


def load_repo_metadata(path: str) -> list[MetadataRow]:
    """Parse and check every row; ``UserError`` names the file and line of the first bad one."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file (--repo-metadata)")
    rows, ignored = [], set()
    try:
        for lineno, rec in _records(path):
            where = f"{path}:{lineno}"
            name = rec.get(REPO_NAME)
            if not isinstance(name, str) or not name.strip():
                raise UserError(f"{where}: no repo_name")
            source = rec.get(SOURCE)
            if source is not None and not isinstance(source, str):
                raise UserError(f"{where}: `source` must be a string")
            fields = {ALIASES[k]: _value(k, v, where) for k, v in rec.items() if k in ALIASES}
            ignored.update(k for k in rec if k not in ALIASES and k not in (REPO_NAME, SOURCE))
            rows.append(MetadataRow(lineno, name.strip(), source or None, fields))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UserError(f"{path}: cannot read the repository metadata ({e})") from e
    if ignored:
        log.warning("%s: ignoring unknown columns: %s", path, ", ".join(sorted(ignored)))
    return rows
