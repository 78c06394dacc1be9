"""The SOURCE arguments of ``stackcoder build``, resolved into repositories and checked up front.

A SOURCE is a directory holding one repository, a git repository (work tree or bare), an archive
(tar, tar.gz/bz2/xz, zip), or a table file (Parquet/JSONL in The Stack v2 schema). With
``--repos-dir`` each entry of a directory is one repository. Everything that can be checked cheaply
is checked here, before the pipeline starts, so that a bad SOURCE is one clear ``UserError``
rather than a failed task; a bad file inside a good SOURCE is the reader's to skip.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from typing import Any

from stackcoder.data.readers.archive import (
    ARCHIVE_SUFFIXES,
    archive_format,
    archive_stem,
    scan_archive,
    sniff_archive,
)
from stackcoder.data.readers.directory import directory_size
from stackcoder.data.readers.git import check_git_repo, git_repo_name, git_repo_size, looks_like_git
from stackcoder.data.readers.repo_metadata import MetadataRow, load_repo_metadata
from stackcoder.data.readers.table import TABLE_SUFFIXES, check_table, table_format
from stackcoder.errors import UserError

log = logging.getLogger(__name__)

KINDS = ("dir", "git", "archive", "table")
SOURCE_TYPES = ("auto", *KINDS)


@dataclass(frozen=True)
class Source:
    """One repository to read (or, for ``table``, one file of many repositories' records)."""

    kind: str  # one of KINDS
    path: str  # as given
    repo_name: str  # for a table: a default only, each record has its own
    label: str  # the SOURCE argument as typed (with --repos-dir: the entry's path), for stats
    size_bytes: int  # what will be read, roughly: for balancing sources over tasks
    metadata: dict[str, Any] = field(default_factory=dict)  # data/fields.py keys: stars, forks, ...


def _check_access(path: str, what: str) -> None:
    if not os.path.lexists(path):
        raise UserError(f"{path}: no such file or directory")
    if not os.path.exists(path):
        raise UserError(f"{path}: a broken symlink")
    mode = os.R_OK | (os.X_OK if os.path.isdir(path) else 0)
    if not os.access(path, mode):
        raise UserError(f"{path}: permission denied (cannot read this {what})")


def _detect(path: str) -> str:
    if os.path.isdir(path):
        return "git" if looks_like_git(path) else "dir"
    if archive_format(path):
        return "archive"
    if table_format(path):
        return "table"
    raise UserError(
        f"{path}: unknown kind of SOURCE; expected a directory, a git repository, an archive "
        f"({', '.join(ARCHIVE_SUFFIXES)}) or a table ({', '.join(TABLE_SUFFIXES)}); see --source-type"
    )


def resolve_source(
    path: str, label: str, source_type: str, max_archive_bytes: int, max_archive_members: int
) -> Source:
    """One SOURCE path to a checked ``Source``; raises ``UserError`` naming the path."""
    _check_access(path, "SOURCE")
    kind = _detect(path) if source_type == "auto" else source_type
    is_dir = os.path.isdir(path)
    if kind in ("dir", "git") and not is_dir:
        raise UserError(f"{path}: --source-type {kind} needs a directory")
    if kind in ("archive", "table") and is_dir:
        raise UserError(f"{path}: --source-type {kind} needs a file, not a directory")
    if kind == "git":
        check_git_repo(path)  # a plain directory, or a `*.git` directory that is not a repository
        return Source("git", path, git_repo_name(path), label, git_repo_size(path))
    if kind == "dir":
        name = os.path.basename(os.path.realpath(path))
        return Source("dir", path, name, label, directory_size(path))
    if kind == "archive":
        fmt = archive_format(path) or sniff_archive(path)
        if fmt is None:
            raise UserError(f"{path}: not a tar or zip archive")
        info = scan_archive(path, fmt, max_archive_bytes, max_archive_members)
        return Source("archive", path, info.npm_name or archive_stem(path), label, info.total_bytes)
    fmt = table_format(path)
    if fmt is None:
        raise UserError(f"{path}: a table must be one of {', '.join(TABLE_SUFFIXES)}")
    check_table(path, fmt)
    stem = os.path.basename(path).split(".", 1)[0]
    return Source("table", path, stem, label, os.path.getsize(path))


def _repos_dir_entries(path: str) -> list[str]:
    """The repositories of a ``--repos-dir``: subdirectories and archives, sorted, hidden ones skipped."""
    _check_access(path, "directory")
    if not os.path.isdir(path):
        raise UserError(f"{path}: --repos-dir needs a directory of repositories")
    names = sorted(n for n in os.listdir(path) if not n.startswith("."))
    full = [os.path.join(path, n) for n in names]
    others = [n for n, p in zip(names, full, strict=True) if not os.path.isdir(p) and not archive_format(p)]
    if others:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        raise UserError(f"{path}: not a repository, a git repository or an archive: {shown}")
    return full


def discover_sources(
    paths: list[str],
    *,
    repos_dir: bool = False,
    source_type: str = "auto",
    repo_metadata: str | None = None,
    max_archive_bytes: int,
    max_archive_members: int,
) -> list[Source]:
    """Every SOURCE argument as one or more checked ``Source``s, in argument order."""
    if source_type not in SOURCE_TYPES:
        raise UserError(f"--source-type must be one of {', '.join(SOURCE_TYPES)}, not {source_type!r}")
    if not paths:
        raise UserError("no SOURCE given")
    caps = (max_archive_bytes, max_archive_members)
    sources: list[Source] = []
    for arg in paths:
        entries = _repos_dir_entries(arg) if repos_dir else [arg]
        sources += [resolve_source(p, p, source_type, *caps) for p in entries]
    seen: dict[str, str] = {}
    for s in sources:
        real = os.path.realpath(s.path)
        if real in seen:
            raise UserError(f"{s.label}: given twice (also as {seen[real]})")
        seen[real] = s.label
    if repo_metadata:
        sources = join_repo_metadata(sources, load_repo_metadata(repo_metadata), repo_metadata)
    return sources


def _hits(row_source: str, sources: list[Source]) -> list[int]:
    """Sources a ``source`` value names: as typed or the same file, else by entry name."""
    real = os.path.realpath(row_source)
    exact = [
        i
        for i, s in enumerate(sources)
        if row_source in (s.label, s.path) or real == os.path.realpath(s.path)
    ]
    if exact:
        return exact
    name = os.path.basename(row_source.rstrip("/"))
    return [i for i, s in enumerate(sources) if os.path.basename(s.path.rstrip("/")) == name]


def join_repo_metadata(sources: list[Source], rows: list[MetadataRow], path: str) -> list[Source]:
    """Sources with their rows applied: by ``source`` first, else by repo_name (later rows win)."""
    sources = list(sources)
    picked: set[int] = set()
    unmatched = 0
    for row in (r for r in rows if r.source):
        hits = _hits(row.source, sources)
        if len(hits) > 1:
            labels = ", ".join(sources[i].label for i in hits)
            raise UserError(f"{path}:{row.line}: source {row.source!r} matches several SOURCES ({labels})")
        if not hits:
            unmatched += 1
            continue
        s = sources[hits[0]]
        sources[hits[0]] = replace(s, repo_name=row.repo_name, metadata={**s.metadata, **row.fields})
        picked.add(hits[0])
    by_name: dict[str, dict[str, Any]] = {}
    for row in (r for r in rows if not r.source):
        by_name.setdefault(row.repo_name, {}).update(row.fields)
    used = set()
    for i, s in enumerate(sources):
        if i not in picked and s.kind != "table" and s.repo_name in by_name:
            sources[i] = replace(s, metadata={**s.metadata, **by_name[s.repo_name]})
            used.add(s.repo_name)
    unmatched += len(set(by_name) - used)
    if unmatched:
        log.warning("%s: %d rows match no SOURCE", path, unmatched)
    return sources
