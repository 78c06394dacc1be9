"""Write a file completely or not at all, under a name that does not depend on who writes it.

Every dedup pass writes its outputs through ``replacing``: the data goes to a hidden temporary name
beside the target and is renamed over it only once written and closed. A task killed with
``kill -9`` leaves at most a stray temporary file, which its rerun overwrites; a later pass never
sees half a file, and a rerun gives the same bytes as the first run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def temporary_name(path: Path) -> Path:
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
