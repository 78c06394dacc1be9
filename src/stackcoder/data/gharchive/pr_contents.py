"""A pull request's files at its base and head commits, read from git (recipe.md §6: "base and
head file contents from the repository at ``base.sha`` / ``head.sha``; only files present in both").

Repositories are the git SOURCEs of the build, found by ``owner/name`` (the ``origin`` remote's
path, else the directory name; case-insensitive), the PR's base repository first, then its head
repository. Commits of the PR's head branch are only in the base repository if they were fetched
(GitHub keeps them under ``refs/pull/<n>/head``: ``git fetch origin '+refs/pull/*:refs/pull/*'``).

Per distinct head commit of the PR (each push), the files changed between the base and that head
that exist in both as regular files (``git diff-tree``, no renames) are read; binary (NUL byte),
undecodable or larger than ``max_file_bytes`` files are skipped. The base and the first head must
exist (else ``commits_missing``) and give at least one file (else ``no_common_files``); a later
head that is missing (force-pushed away) has no diff (stat ``heads_missing``). A PR without a
repository is removed with ``no_repository``.

Metadata after this step: ``base_files`` {path: text} and ``head_files`` {head: {path: text}}.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

from datatrove.data import Document, DocumentsPipeline

from stackcoder.data import fields as F
from stackcoder.data.gharchive.pr_thread import ENTRIES
from stackcoder.data.readers.git import _cat, _cmd, _env
from stackcoder.data.step import FileStep, is_removed

BASE_FILES = "base_files"
HEAD_FILES = "head_files"
_REGULAR = (b"100644", b"100755")


def heads_of(entries: list[dict]) -> list[str]:
    """Distinct head commits in the order the PR's timeline shows them."""
    return list(dict.fromkeys(e["head"] for e in entries if e.get("head")))


class _Repo:
    """One ``git cat-file --batch`` per repository, kept open while the task runs."""

    def __init__(self, path: str):
        self.path = path
        self.cat = subprocess.Popen(
            _cmd(path, "cat-file", "--batch"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_env(path),
        )

    def has_commit(self, sha: str) -> bool:
        return (
            bool(sha)
            and sha.isalnum()
            and _cat(self.cat, f"{sha}^{{commit}}".encode(), self.path) is not None
        )

    def blob(self, oid: str) -> bytes | None:
        return _cat(self.cat, oid.encode(), self.path)

    def changed(self, base: str, head: str) -> list[tuple[str, str, str]]:
        """(path, base blob, head blob) of regular files modified between the commits."""
        proc = subprocess.run(
            _cmd(self.path, "diff-tree", "-r", "-z", "--no-renames", base, head),
            capture_output=True,
            env=_env(self.path),
        )
        fields = proc.stdout.split(b"\0")
        out = []
        for meta, name in zip(fields[0::2], fields[1::2], strict=False):
            parts = meta.lstrip(b":").split()
            if len(parts) == 5 and parts[4] == b"M" and parts[0] in _REGULAR and parts[1] in _REGULAR:
                out.append((name.decode("utf-8", "surrogateescape"), parts[2].decode(), parts[3].decode()))
        return out

    def close(self) -> None:
        self.cat.stdin.close()
        self.cat.stdout.close()
        try:
            self.cat.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.cat.kill()
            self.cat.wait()


class PullRequestContents(FileStep):
    name = "📂 pull request files"
    stage = "pr_contents"

    def __init__(self, repositories: dict[str, str] | None = None, max_file_bytes: int = 1_000_000):
        """``repositories``: ``owner/name`` -> path of a git repository."""
        super().__init__()
        self.repositories = {name.lower(): path for name, path in (repositories or {}).items()}
        self.max_file_bytes = max_file_bytes
        self._open: dict[str, _Repo] = {}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_open": {}}

    def _repo(self, name: str | None) -> _Repo | None:
        path = self.repositories.get((name or "").lower())
        if path is None:
            return None
        if path not in self._open:
            self._open[path] = _Repo(path)
        return self._open[path]

    def _text(self, repo: _Repo, oid: str, cache: dict[str, str | None]) -> str | None:
        if oid not in cache:
            data = repo.blob(oid)
            text = None
            if data is not None and len(data) <= self.max_file_bytes and b"\0" not in data:
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError:
                    text = None
            cache[oid] = text
        return cache[oid]

    def process(self, doc: Document) -> str | tuple[str, str] | None:
        meta = doc.metadata
        entries = meta[ENTRIES]
        base, heads = entries[0]["base"], heads_of(entries)
        repo = self._repo(meta[F.REPO_NAME])
        if repo is None or not (repo.has_commit(base) and heads and repo.has_commit(heads[0])):
            repo = self._repo(meta.get("head_repo")) or repo
        if repo is None:
            return "no_repository"
        if not (repo.has_commit(base) and heads and repo.has_commit(heads[0])):
            return "commits_missing", f"base {base} head {heads[0] if heads else None}"
        cache: dict[str, str | None] = {}
        base_files: dict[str, str] = {}
        head_files: dict[str, dict[str, str]] = {}
        for head in heads:
            if head != heads[0] and not repo.has_commit(head):
                self.stat_update("heads_missing")
                continue
            files = {}
            for path, base_oid, head_oid in repo.changed(base, head):
                old, new = self._text(repo, base_oid, cache), self._text(repo, head_oid, cache)
                if old is None or new is None:
                    self.stat_update("files_skipped")
                    continue
                base_files[path] = old
                files[path] = new
            head_files[head] = files
        if not head_files[heads[0]]:
            return "no_common_files"
        meta[BASE_FILES], meta[HEAD_FILES] = base_files, head_files
        return None

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        try:
            for doc in data:
                if not is_removed(doc):
                    with self.track_time():
                        verdict = self.process(doc)
                    self.account(doc, verdict)
                yield doc
        finally:
            for repo in self._open.values():
                repo.close()
            self._open = {}
