"""Unpack the source subtree of a Debian ``golang-*-dev``, ``librust-*-dev``, ``elpa-*`` or ``ruby-*``
package.

A ``.deb`` is an ``ar`` archive whose ``data.tar.*`` member holds the installed tree. Go packages put
their source under ``/usr/share/gocode/src/<import path>/``, Rust crates under
``/usr/share/cargo/registry/<crate>-<version>/``, Emacs Lisp packages under
``/usr/share/emacs/site-lisp/elpa-src/<name>-<version>/`` and Ruby gems under
``/usr/share/rubygems-integration/all/gems/<gem>-<version>/`` (the fine-tuning benchmark's corpus,
benchmarks/finetune_corpus.toml); the repository is the deepest directory
that holds all the files below those roots. The package's license statement,
``/usr/share/doc/<package>/copyright``, is carried along as ``debian/copyright``, the path it has in
the Debian source package, whose root the source subtree corresponds to (its ``Files:`` patterns
are relative to it). Everything else (changelogs, ...) is left out. We read the archive in Python
rather than with ``dpkg-deb -x`` so that nothing is written outside the target: links are not
recreated, and a member whose path leaves the archive root is refused.
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

SOURCE_ROOTS = (
    "usr/share/gocode/src/",
    "usr/share/cargo/registry/",
    "usr/share/emacs/site-lisp/elpa-src/",
    "usr/share/rubygems-integration/all/gems/",
)
COPYRIGHT = "debian/copyright"  # where the package's copyright file goes in the repository
# bump when extract_source lays a package out differently: download.py re-extracts older layouts
LAYOUT_VERSION = "2"  # 1: source subtree only; 2: + debian/copyright


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


def _copyright_member(deb: Path, members: list[tuple[str, tarfile.TarInfo]]) -> tarfile.TarInfo | None:
    """The package's ``usr/share/doc/<package>/copyright`` (a regular file; a link is not followed)."""
    docs = {
        path.split("/")[3]: m
        for path, m in members
        if m.isfile()
        and path.startswith("usr/share/doc/")
        and path.count("/") == 4
        and path.endswith("/copyright")
    }
    package = deb.name.split("_", 1)[0]  # apt-get names the file <package>_<version>_<arch>.deb
    if package in docs:
        return docs[package]
    return next(iter(docs.values())) if len(docs) == 1 else None


def extract_source(deb: Path, target: Path) -> Path:
    """Write the package's source subtree to ``target`` (which must not exist) and return it, with
    the package's copyright file as ``debian/copyright`` unless the subtree has one of its own."""
    tar = _data_tar(deb)
    members = [(_member_path(m.name), m) for m in tar.getmembers()]  # check every member
    files = [(path, m) for path, m in members if m.isfile() and path.startswith(SOURCE_ROOTS)]
    if not files:
        raise UserError(f"{deb.name}: no source under {' or '.join('/' + r for r in SOURCE_ROOTS)}")
    root = posixpath.commonpath([posixpath.dirname(p) for p, _ in files])
    out_files = [(posixpath.relpath(path, root), m) for path, m in files]
    copyright_member = _copyright_member(deb, members)
    if copyright_member is not None and COPYRIGHT not in {rel for rel, _ in out_files}:
        out_files.append((COPYRIGHT, copyright_member))
    target = Path(target)
    target.mkdir(parents=True)
    top = target.resolve()
    for rel, m in out_files:
        out = (target / rel).resolve()
        if not out.is_relative_to(top):  # cannot happen after _member_path; never write there anyway
            raise UserError(f"refusing a path outside the target: {m.name!r}")
        out.parent.mkdir(parents=True, exist_ok=True)
        src = tar.extractfile(m)
        assert src is not None  # a regular file always has data
        with src, open(out, "xb") as dst:
            shutil.copyfileobj(src, dst)
        os.chmod(out, 0o755 if m.mode & 0o111 else 0o644)
    return target
