"""Write a file (or a folder) completely or not at all, under a name that does not depend on who writes it.

Every output a later step or a rerun reads goes through here: the data goes to a hidden temporary
name beside the target and is renamed over it only once written and closed (a rename within one
file system is atomic). A process killed with ``kill -9`` leaves at most a stray temporary, which its
rerun overwrites; a reader never sees half a file, and a rerun gives the same bytes as the first run.
Used by the dedup passes, the repository documents, the index, checkpoints, the opt-out list and the
demo cache.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def temporary_name(path: Path) -> Path:
    """The hidden name ``path`` is written under before the rename."""
    return path.with_name(f".{path.name}.tmp")


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | Path, data: bytes) -> None:
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    with replacing(path) as tmp:
        tmp.write_text(text, encoding=encoding)


def write_json(path: str | Path, value: Any, indent: int | None = 1) -> None:
    """``value`` as JSON and a final newline."""
    write_text(path, json.dumps(value, indent=indent) + "\n")


def replace_dir(tmp: str | Path, path: str | Path) -> None:
    """Put the finished folder ``tmp`` at ``path``, replacing what was there. Not atomic as a whole
    (a folder cannot be renamed over another): a reader that finds ``path`` finds it complete, and a
    crash in between leaves ``path`` absent, so the writer's rerun makes it again."""
    path = Path(path)
    if path.exists():
        shutil.rmtree(path)
    Path(tmp).rename(path)
