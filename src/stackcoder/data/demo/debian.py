"""Unpack the source subtree of a Debian ``golang-*-dev`` or ``librust-*-dev`` package.

A ``.deb`` is an ``ar`` archive whose ``data.tar.*`` member holds the installed tree. Go packages put
their source under ``/usr/share/gocode/src/<import path>/`` and Rust crates under
``/usr/share/cargo/registry/<crate>-<version>/``; the repository is the deepest directory that holds
all the files below those roots. Everything else (``/usr/share/doc``, ...) is left out. We read the
archive in Python rather than with ``dpkg-deb -x`` so that nothing is written outside the target:
links are not recreated, and a member whose path leaves the archive root is refused.
"""

from __future__ import annotations

import io
import os
import posixpath
import shutil
import subprocess
import tarfile
from pathlib import Path

from stackcoder.errors import UserError

SOURCE_ROOTS = ("usr/share/gocode/src/", "usr/share/cargo/registry/")


def _ar_members(data: bytes) -> dict[str, bytes]:
    """The members of a System V / GNU ``ar`` archive (the container format of ``.deb``)."""
    if not data.startswith(b"!<arch>\n"):
        raise UserError("not a Debian package (no ar header)")
    members, pos = {}, 8
    while pos + 60 <= len(data):
        header = data[pos : pos + 60]
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError as e:
            raise UserError("corrupt Debian package (bad ar member size)") from e
        members[name] = data[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size % 2)  # members are 2-byte aligned
    return members


def _data_tar(deb: Path) -> tarfile.TarFile:
    members = _ar_members(deb.read_bytes())
    name = next((n for n in members if n.startswith("data.tar")), None)
    if name is None:
        raise UserError(f"{deb.name}: no data.tar member")
    if name.endswith(".zst"):
        # Python 3.11 has no zstd (Ubuntu packages use it); dpkg-deb decompresses where it exists
        if shutil.which("dpkg-deb") is None:
            raise UserError(f"{deb.name}: zstd-compressed and dpkg-deb is not installed")
        cmd = ["dpkg-deb", "--fsys-tarfile", str(deb)]
        tar_bytes = subprocess.run(cmd, capture_output=True, check=True).stdout
        return tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:")
    return tarfile.open(fileobj=io.BytesIO(members[name]), mode="r:*")


def _member_path(name: str) -> str:
    """The member's path relative to the archive root; refuses absolute paths and ``..``."""
    path = name.removeprefix("./")
    parts = path.split("/")
    if name.startswith("/") or ".." in parts or posixpath.isabs(path):
        raise UserError(f"refusing a path outside the target: {name!r}")
    return posixpath.normpath(path) if path else ""


def extract_source(deb: Path, target: Path) -> Path:
    """Write the package's source subtree to ``target`` (which must not exist) and return it."""
    tar = _data_tar(deb)
    files: list[tuple[str, tarfile.TarInfo]] = []
    for m in tar.getmembers():
        path = _member_path(m.name)  # check every member, not only the ones we keep
        if m.isfile() and path.startswith(SOURCE_ROOTS):
            files.append((path, m))
    if not files:
        raise UserError(f"{deb.name}: no source under {' or '.join('/' + r for r in SOURCE_ROOTS)}")
    root = posixpath.commonpath([posixpath.dirname(p) for p, _ in files])
    target = Path(target)
    target.mkdir(parents=True)
    top = target.resolve()
    for path, m in files:
        out = (target / posixpath.relpath(path, root)).resolve()
        if not out.is_relative_to(top):  # cannot happen after _member_path; never write there anyway
            raise UserError(f"refusing a path outside the target: {m.name!r}")
        out.parent.mkdir(parents=True, exist_ok=True)
        src = tar.extractfile(m)
        assert src is not None  # a regular file always has data
        with src, open(out, "xb") as dst:
            shutil.copyfileobj(src, dst)
        os.chmod(out, 0o755 if m.mode & 0o111 else 0o644)
    return target
