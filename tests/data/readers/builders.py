"""Helpers for the reader tests: real git repositories and archives built in ``tmp_path``.

Imported as `data.readers.builders` (pyproject puts tests/ on the path); the `git` fixture is
in conftest.py.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from stackcoder.data.readers import discover_sources
from stackcoder.data.readers.reader import RepositoryReader

COMMIT_DATE = "2024-01-02T03:04:05+00:00"
CAPS = {"max_archive_bytes": 50_000_000, "max_archive_members": 10_000}

requires_git = pytest.mark.skipif(shutil.which("git") is None, reason="the git command is not installed")


def git_env(home: Path) -> dict[str, str]:
    """A reproducible git: fixed identity and dates, no user or system config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Test Author",
        GIT_AUTHOR_EMAIL="author@example.com",
        GIT_COMMITTER_NAME="Test Committer",
        GIT_COMMITTER_EMAIL="committer@example.com",
        GIT_AUTHOR_DATE=COMMIT_DATE,
        GIT_COMMITTER_DATE=COMMIT_DATE,
    )
    return env


class Git:
    def __init__(self, home: Path):
        self.env = git_env(home)

    def __call__(self, cwd: Path, *args: str, input: bytes | None = None) -> str:
        out = subprocess.run(
            ["git", "-c", "init.defaultBranch=main", *args],
            cwd=cwd,
            env=self.env,
            input=input,
            capture_output=True,
            check=True,
        )
        return out.stdout.decode().strip()

    def repo(self, path: Path, files: dict[str, str | bytes], branch: str = "main") -> str:
        """``git init`` + one commit of ``files`` on ``branch``; returns the commit id."""
        path.mkdir(parents=True, exist_ok=True)
        self(path, "init", "-q", "-b", branch)
        self.commit(path, files)
        return self(path, "rev-parse", "HEAD")

    def commit(self, path: Path, files: dict[str, str | bytes], message: str = "commit") -> str:
        write_files(path, files)
        self(path, "add", "-A")
        self(path, "commit", "-q", "-m", message)
        return self(path, "rev-parse", "HEAD")

    def hash_object(self, path: Path) -> str:
        return self(path.parent, "hash-object", path.name)


def write_files(root: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            p.write_text(content, encoding="utf-8")
        else:
            p.write_bytes(content)


def read(paths: list[str], rank: int = 0, world_size: int = 1, reader_kw: dict | None = None, **kw):
    """discover_sources + RepositoryReader.run: the documents, and the reader (for its stats)."""
    sources = discover_sources([str(p) for p in paths], **{**CAPS, **kw})
    reader = RepositoryReader(sources, **(reader_kw or {}))
    return list(reader.run(None, rank, world_size)), reader


def by_path(docs) -> dict:
    return {d.metadata["path"]: d for d in docs}


def reason(doc) -> str | None:
    return doc.metadata.get("removed_reason")


def tar_member(
    tar, name: str, data: bytes | str = b"", kind: bytes = tarfile.REGTYPE, link: str = ""
) -> None:
    """Add one member to an open ``tarfile`` (any name, any type: this builds hostile archives too)."""
    data = data.encode() if isinstance(data, str) else data
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mtime, info.mode = kind, link, 1_700_000_000, 0o644
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    else:
        tar.addfile(info)


def make_tar(path: Path, files: dict[str, str | bytes], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, data in files.items():
            tar_member(tar, name, data)
    return path


def make_zip(path: Path, files: dict[str, str | bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path
