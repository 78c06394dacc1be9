"""``RawFile``: one file of a repository as a source kind reads it, before decoding (recipe.md §1).

Every kind (directory, git, archive, table) yields these in the order the reader hands them on:
license-like files first, then the rest by path, so the license step knows a directory's licenses
before it labels the files under it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from stackcoder.data.license_files import is_license_file

# skip reasons set by the kinds; decoding adds `binary` and `undecodable` (decoding.py)
TOO_LARGE = "too_large"  # max_file_bytes or more ("files under 10 MB", recipe.md §1)
SYMLINK = "symlink"  # a symlink in a directory or git tree: never followed
UNREADABLE = "unreadable"  # permission denied, not a regular file, a corrupt member, a missing blob
UNSAFE_PATH = "unsafe_path"  # an archive member with `..` or an absolute path
LINK = "link"  # an archive member that is a symlink or a hardlink
DUPLICATE = "duplicate_path"  # an archive member overwritten by a later one of the same name


@dataclass(slots=True)
class RawFile:
    path: str  # repository-relative, POSIX separators
    data: bytes | None  # None when skipped before reading
    size: int  # bytes on disk (or as declared, for a file too large to read)
    blob_id: str | None = None  # git's blob SHA-1, None when the bytes were not read
    skip_reason: str | None = None
    revision_id: str | None = None
    revision_date: str | None = None  # ISO 8601, UTC
    # table records: repo_name and the pre-existing Stack v2 columns (labels, counts, encoding)
    repo_name: str | None = None
    columns: dict[str, Any] = field(default_factory=dict)


def blob_sha1(data: bytes) -> str:
    """Git's blob id of ``data``: the value ``git hash-object`` prints (The Stack v2's ``blob_id``)."""
    h = hashlib.sha1(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def file_order(path: str) -> tuple[bool, str]:
    """Sort key within a repository: license-like files first, then by path."""
    return (not is_license_file(path), path)


def clean_path(name: str) -> str:
    """A path as stored in the output: valid UTF-8 even when the name on disk is not.

    Names that are not UTF-8 arrive as surrogate escapes (os, tarfile) and could not be written to
    Parquet; they become U+FFFD, while the original name is kept for reading the bytes.
    """
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
