"""An archive (tar, tar.gz/bz2/xz, zip) as one repository, read as a stream and never extracted.

A PyPI sdist or an npm tarball is one repository. Nothing is written to disk and no link is
followed: members with `..` or an absolute path are skipped (``unsafe_path``), symlinks and
hardlinks too (``link``). Two caps, the total uncompressed bytes and the number of members, stop
decompression bombs: ``scan_archive`` checks them before the pipeline starts, streaming through
the archive once without storing anything, and the reader checks them again while it reads.

When every member sits under one top-level directory (sdist ``name-1.0/``, npm ``package/``) that
directory is stripped from the paths. A tar has no index, so the reader makes two passes: the first
keeps the license-like members (the license step needs them first), the second yields the rest in
archive order. A zip has an index: license-like members first, then the rest by path.
"""

from __future__ import annotations

import json
import lzma
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from stackcoder.data.license_files import is_license_file
from stackcoder.data.readers.raw import (
    DUPLICATE,
    LINK,
    TOO_LARGE,
    UNREADABLE,
    UNSAFE_PATH,
    RawFile,
    blob_sha1,
    clean_path,
    file_order,
)
from stackcoder.errors import UserError

_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz", ".tar")
ARCHIVE_SUFFIXES = (*_TAR_SUFFIXES, ".zip")
# what a damaged compressed stream raises, besides tarfile's own errors
_CORRUPT = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError, ValueError)
# what reading one damaged zip member raises (bad CRC, unsupported method, encrypted, truncated)
_BAD_MEMBER = (zipfile.BadZipFile, NotImplementedError, RuntimeError, *_CORRUPT)
_NPM_MANIFEST_BYTES = 1_000_000


def archive_format(path: str) -> str | None:
    """``"tar"`` or ``"zip"`` from the file name, None when it is not an archive's name."""
    low = path.lower()
    if low.endswith(".zip"):
        return "zip"
    return "tar" if low.endswith(_TAR_SUFFIXES) else None


def sniff_archive(path: str) -> str | None:
    """``"tar"`` or ``"zip"`` from the content (for ``--source-type archive`` on an odd name)."""
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        return "tar" if tarfile.is_tarfile(path) else None
    except _CORRUPT:
        return None


def archive_stem(path: str) -> str:
    """The file name without its archive extension: ``flask-3.0.0.tar.gz`` -> ``flask-3.0.0``."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def member_path(name: str) -> str | None:
    """A member's repository path, or None when it is absolute or climbs out with `..`."""
    name = name.replace("\\", "/")  # a Windows-made archive; `..\\x` is as unsafe as `../x`
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return None if ".." in parts else "/".join(parts)


def _dedup_key(name: str) -> str:
    """`a.py` and `./a.py` are one file once extracted."""
    p = member_path(name)
    return name if p is None else p


def _common_top(paths: list[tuple[str, bool]]) -> str | None:
    """The single top-level directory every (path, is_dir) sits under, if there is one."""
    tops = {p.split("/", 1)[0] for p, _ in paths if p}
    if len(tops) != 1:
        return None
    top = tops.pop()
    if any(p == top and not is_dir for p, is_dir in paths):  # the top is a file, not a directory
        return None
    return top if any(p.startswith(top + "/") for p, _ in paths) else None


def _strip(path: str, top: str | None) -> str:
    return path[len(top) + 1 :] if top else path


@dataclass
class ArchiveInfo:
    total_bytes: int  # uncompressed bytes of the members
    members: int
    top: str | None  # the top-level directory that will be stripped
    npm_name: str | None  # `name` of package/package.json, for an npm tarball


class _Caps:
    """Counts members and uncompressed bytes; raises as soon as either cap is passed."""

    def __init__(self, path: str, max_bytes: int, max_members: int):
        self.path, self.max_bytes, self.max_members = path, max_bytes, max_members
        self.bytes = self.members = 0

    def add(self, size: int) -> None:
        self.members += 1
        self.bytes += max(size, 0)
        if self.members > self.max_members:
            raise UserError(f"{self.path}: more than {self.max_members:,} members (max_archive_members)")
        if self.bytes > self.max_bytes:
            raise UserError(
                f"{self.path}: expands to more than {self.max_bytes:,} bytes (max_archive_bytes); "
                "a decompression bomb?"
            )


class _StrictTarInfo(tarfile.TarInfo):
    """Notes a damaged or missing header, which tarfile past the first member takes for the end."""

    @classmethod
    def fromtarfile(cls, tar: tarfile.TarFile) -> tarfile.TarInfo:
        try:
            return super().fromtarfile(tar)
        except (tarfile.EmptyHeaderError, tarfile.TruncatedHeaderError, tarfile.InvalidHeaderError) as e:
            tar.damage = e  # a truncated stream, or garbage where a header should be
            raise


def _open_tar(path: str) -> tarfile.TarFile:
    try:
        # streaming: one forward pass, no seeks, nothing extracted
        return tarfile.open(path, "r|*", tarinfo=_StrictTarInfo)
    except _CORRUPT as e:
        raise UserError(f"{path}: not a readable tar archive ({e})") from e


def _open_zip(path: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise UserError(f"{path}: not a readable zip archive ({e})") from e


def _tar_kind(m: tarfile.TarInfo) -> str | None:
    """None for a regular file, ``"dir"``, or a skip reason."""
    if m.isdir():
        return "dir"
    if m.issym() or m.islnk():
        return LINK
    return None if m.isreg() else UNREADABLE


def _zip_kind(info: zipfile.ZipInfo) -> str | None:
    if info.is_dir():
        return "dir"
    if stat.S_ISLNK(info.external_attr >> 16):
        return LINK
    return UNREADABLE if info.flag_bits & 0x1 else None  # encrypted: we have no password


def scan_archive(path: str, fmt: str, max_bytes: int, max_members: int) -> ArchiveInfo:
    """Validate an archive before the pipeline: readable, within the caps. Stores nothing."""
    caps = _Caps(path, max_bytes, max_members)
    paths: list[tuple[str, bool]] = []
    manifest: bytes | None = None
    if fmt == "zip":
        with _open_zip(path) as zf:
            for info in zf.infolist():
                # zipfile never inflates a member past its declared size, so the sum bounds the output
                caps.add(info.file_size)
                if (p := member_path(info.filename)) is not None:
                    paths.append((p, info.is_dir()))
                    if p == "package/package.json" and _zip_kind(info) is None:
                        manifest = _read_zip(zf, info, _NPM_MANIFEST_BYTES)
    else:
        for _, m, tar in _tar_pass(path, caps):
            if (p := member_path(m.name)) is not None:
                paths.append((p, m.isdir()))
                if p == "package/package.json" and m.isreg() and m.size < _NPM_MANIFEST_BYTES:
                    manifest = _read_tar(path, tar, m, _NPM_MANIFEST_BYTES)
    top = _common_top(paths)
    return ArchiveInfo(caps.bytes, caps.members, top, _npm_name(manifest) if top == "package" else None)


def _npm_name(manifest: bytes | str | None) -> str | None:
    if not isinstance(manifest, bytes):
        return None
    try:
        name = json.loads(manifest).get("name")
    except (ValueError, AttributeError):
        return None
    return name if isinstance(name, str) and name.strip() else None


def _read_zip(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes | str:
    """At most ``limit`` bytes of a member, or ``unreadable`` (bad CRC, unknown method, ...)."""
    try:
        with zf.open(info) as f:
            return f.read(limit)
    except _BAD_MEMBER:
        return UNREADABLE


def _raw(path: str, data: bytes | str, size: int, max_file_bytes: int) -> RawFile:
    if isinstance(data, str):
        return RawFile(path, None, size, skip_reason=data)
    if len(data) >= max_file_bytes:
        return RawFile(path, None, size, skip_reason=TOO_LARGE)
    return RawFile(path, data, len(data), blob_sha1(data))


def _iter_zip(path: str, max_file_bytes: int, caps: _Caps) -> Iterator[RawFile]:
    with _open_zip(path) as zf:
        infos = zf.infolist()
        last: dict[str, int] = {}  # like extraction: of two members with one path, the last one wins
        paths = []
        for i, info in enumerate(infos):
            caps.add(info.file_size)
            last[_dedup_key(info.filename)] = i
            if (p := member_path(info.filename)) is not None:
                paths.append((p, info.is_dir()))
        top = _common_top(paths)
        members = []
        for i, info in enumerate(infos):
            kind = _zip_kind(info)
            if kind == "dir":
                continue
            p = member_path(info.filename)
            shown = clean_path(_strip(p, top) if p is not None else info.filename)
            members.append((shown, i, info, kind, p is None))
        for shown, i, info, kind, unsafe in sorted(members, key=lambda m: (file_order(m[0]), m[1])):
            if unsafe or kind or last[_dedup_key(info.filename)] != i:
                reason = UNSAFE_PATH if unsafe else (kind or DUPLICATE)
                yield RawFile(shown, None, info.file_size, skip_reason=reason)
            elif info.file_size >= max_file_bytes:
                yield RawFile(shown, None, info.file_size, skip_reason=TOO_LARGE)
            else:
                yield _raw(shown, _read_zip(zf, info, max_file_bytes + 1), info.file_size, max_file_bytes)


def _tar_pass(path: str, caps: _Caps) -> Iterator[tuple[int, tarfile.TarInfo, tarfile.TarFile]]:
    tar = _open_tar(path)
    try:
        i = 0
        while (m := tar.next()) is not None:
            tar.members.clear()  # tarfile keeps every header otherwise: millions for a big archive
            caps.add(m.size if m.isreg() else 0)
            yield i, m, tar
            i += 1
        if damage := getattr(tar, "damage", None):
            raise UserError(f"{path}: corrupt archive (truncated or damaged after {i} members: {damage})")
    except _CORRUPT as e:
        raise UserError(f"{path}: corrupt archive ({e})") from e
    finally:
        tar.close()


def _read_tar(path: str, tar: tarfile.TarFile, m: tarfile.TarInfo, max_file_bytes: int) -> bytes | str:
    if m.size >= max_file_bytes:
        return TOO_LARGE  # not decompressed: the stream skips over it
    try:
        f = tar.extractfile(m)
        return f.read(max_file_bytes + 1) if f else UNREADABLE
    except _CORRUPT as e:
        raise UserError(f"{path}: corrupt archive ({e})") from e


def _iter_tar(path: str, max_file_bytes: int, max_bytes: int, max_members: int) -> Iterator[RawFile]:
    # pass 1: every name (for the top directory and duplicates) and the license-like members' bytes
    paths, last, licenses = [], {}, []
    for i, m, tar in _tar_pass(path, _Caps(path, max_bytes, max_members)):
        last[_dedup_key(m.name)] = i
        p = member_path(m.name)
        if p is not None:
            paths.append((p, m.isdir()))
            if _tar_kind(m) is None and is_license_file(p):
                licenses.append((p, i, m, _read_tar(path, tar, m, max_file_bytes)))
    top = _common_top(paths)
    for p, i, m, data in sorted(licenses, key=lambda x: (x[0], x[1])):
        shown = clean_path(_strip(p, top))
        yield _raw(shown, data if last[_dedup_key(m.name)] == i else DUPLICATE, m.size, max_file_bytes)
    del licenses
    # pass 2: everything else, in archive order
    for i, m, tar in _tar_pass(path, _Caps(path, max_bytes, max_members)):
        kind = _tar_kind(m)
        p = member_path(m.name)
        if kind == "dir" or (p is not None and kind is None and is_license_file(p)):
            continue  # not a file, or yielded in pass 1
        shown = clean_path(_strip(p, top) if p is not None else m.name)
        size = m.size if m.isreg() else 0
        if p is None or kind or last[_dedup_key(m.name)] != i:
            yield RawFile(shown, None, size, skip_reason=UNSAFE_PATH if p is None else (kind or DUPLICATE))
        else:
            yield _raw(shown, _read_tar(path, tar, m, max_file_bytes), size, max_file_bytes)


def iter_archive(
    path: str, max_file_bytes: int, max_archive_bytes: int, max_archive_members: int
) -> Iterator[RawFile]:
    """The files of an archive, one member's bytes in memory (plus a tar's license-like files)."""
    fmt = archive_format(path) or sniff_archive(path)
    if fmt == "zip":
        yield from _iter_zip(path, max_file_bytes, _Caps(path, max_archive_bytes, max_archive_members))
    elif fmt == "tar":
        yield from _iter_tar(path, max_file_bytes, max_archive_bytes, max_archive_members)
    else:
        raise UserError(f"{path}: not a tar or zip archive")
