"""A plain directory as one repository: every regular file under it, `.git/` excluded.

Symlinks are never followed (a link could point anywhere on the machine); they are skipped with
reason ``symlink``. FIFOs, sockets, devices and files we may not open are skipped as
``unreadable``. Blob ids are computed the way git does, so they match a git source of the same tree.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from typing import NamedTuple

from stackcoder.data.readers.raw import (
    SYMLINK,
    TOO_LARGE,
    UNREADABLE,
    RawFile,
    blob_sha1,
    clean_path,
    file_order,
)
from stackcoder.errors import UserError

# O_NOFOLLOW: a file swapped for a symlink after listing is still not followed;
# O_NONBLOCK: a file swapped for a FIFO does not hang the reader
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


class _Entry(NamedTuple):
    path: str  # repository-relative, POSIX
    full: str  # on disk
    size: int
    skip_reason: str | None


def _walk(root: str, rel: str = "") -> Iterator[_Entry]:
    top = os.path.join(root, rel) if rel else root
    try:
        with os.scandir(top) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as e:
        if not rel:
            raise UserError(f"{root}: cannot read the directory ({e.strerror})") from e
        yield _Entry(rel, top, 0, UNREADABLE)
        return
    for e in entries:
        if e.name == ".git":  # the repository's history (or a submodule's gitfile), not its files
            continue
        path = f"{rel}/{e.name}" if rel else e.name
        try:
            if e.is_symlink():
                yield _Entry(path, e.path, 0, SYMLINK)
            elif e.is_dir(follow_symlinks=False):
                yield from _walk(root, path)
            elif e.is_file(follow_symlinks=False):
                yield _Entry(path, e.path, e.stat(follow_symlinks=False).st_size, None)
            else:
                yield _Entry(path, e.path, 0, UNREADABLE)
        except OSError:
            yield _Entry(path, e.path, 0, UNREADABLE)


def directory_size(root: str) -> int:
    """Bytes of the regular files that would be read (for balancing sources over tasks)."""
    return sum(e.size for e in _walk(root) if e.skip_reason is None)


def _read(full: str, limit: int) -> bytes | str:
    """At most ``limit`` bytes of a regular file, or a skip reason."""
    try:
        fd = os.open(full, _OPEN_FLAGS)
    except OSError:
        return SYMLINK if os.path.islink(full) else UNREADABLE
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return UNREADABLE
        try:
            return f.read(limit)
        except OSError:
            return UNREADABLE


def iter_directory(root: str, max_file_bytes: int) -> Iterator[RawFile]:
    """The files under ``root``: license-like first, then by path; one file's bytes in memory."""
    for e in sorted(_walk(root), key=lambda e: file_order(e.path)):
        path = clean_path(e.path)
        if e.skip_reason:
            yield RawFile(path, None, e.size, skip_reason=e.skip_reason)
        elif e.size >= max_file_bytes:
            yield RawFile(path, None, e.size, skip_reason=TOO_LARGE)
        else:
            data = _read(e.full, max_file_bytes)  # the file may have grown since it was listed
            if isinstance(data, str):
                yield RawFile(path, None, e.size, skip_reason=data)
            elif len(data) >= max_file_bytes:
                yield RawFile(path, None, len(data), skip_reason=TOO_LARGE)
            else:
                yield RawFile(path, data, len(data), blob_sha1(data))
