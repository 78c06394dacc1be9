"""A git repository (work tree or bare) as Software Heritage saw it: the default branch's latest
commit, blobs read from git's object store, never from the work tree (recipe.md §1).

We drive the ``git`` command line: one ``git ls-tree -r -l -z`` lists the tree with blob sizes,
then one ``git cat-file --batch`` process streams the blobs one at a time. Submodules (gitlinks)
are commits of other repositories, not files: they are counted, not yielded. Symlink blobs are
skipped with reason ``symlink``, blobs too large are skipped from their listed size unread.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from stackcoder.data.readers.raw import SYMLINK, TOO_LARGE, UNREADABLE, RawFile, clean_path, file_order
from stackcoder.errors import UserError

_SYMLINK_MODE = b"120000"
_GITLINK_MODE = b"160000"


def _env(path: str) -> dict[str, str]:
    # GIT_DIR & co. inherited from a hook would point git elsewhere; the ceiling stops git from
    # walking up from a plain directory into an enclosing repository
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_CEILING_DIRECTORIES"] = os.path.dirname(os.path.realpath(path))
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LC_ALL"] = "C"
    return env


def _cmd(path: str, *args: str) -> list[str]:
    # reading is plumbing only (no hooks, no checkout), so a repository owned by another user is safe
    return ["git", "-c", "safe.directory=*", "-C", path, *args]


def _git(path: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(_cmd(path, *args), capture_output=True, env=_env(path))
    if check and proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UserError(f"{path}: git {args[0]} failed: {err[-1] if err else proc.returncode}")
    return proc


def looks_like_git(path: str) -> bool:
    """A work tree (has ``.git``), a ``*.git`` directory, or a bare repository without the suffix.

    The first two must then be repositories (``check_git_repo``); a directory that merely has
    ``HEAD``, ``objects/`` and ``refs/`` is git only if git agrees.
    """
    if os.path.lexists(os.path.join(path, ".git")) or path.rstrip("/").endswith(".git"):
        return True
    if not all(os.path.exists(os.path.join(path, p)) for p in ("HEAD", "objects", "refs")):
        return False
    return shutil.which("git") is not None and is_bare(path, check=False)


def check_git_repo(path: str) -> None:
    """Raise ``UserError`` unless ``path`` itself is a git repository (not a directory inside one)."""
    if shutil.which("git") is None:
        raise UserError(f"{path}: reading a git repository needs the `git` command, which is not installed")
    # the ceiling in _env keeps git from finding an enclosing repository: success means `path` is one
    if _git(path, "rev-parse", "--git-dir", check=False).returncode != 0:
        raise UserError(f"{path}: not a git repository")


def is_bare(path: str, check: bool = True) -> bool:
    return _git(path, "rev-parse", "--is-bare-repository", check=check).stdout.strip() == b"true"


def default_commit(path: str) -> str | None:
    """The commit Software Heritage would archive, or None for a repository without commits.

    The remote's default branch when known (``origin/HEAD``), a bare repository's ``HEAD``, else
    ``main``, ``master``, then whatever ``HEAD`` is: a work tree checked out on a feature branch
    still yields the default branch.
    """
    refs = ["refs/remotes/origin/HEAD"] + (["HEAD"] if is_bare(path) else [])
    refs += ["refs/heads/main", "refs/heads/master", "HEAD"]
    for ref in refs:
        proc = _git(path, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        if proc.returncode == 0:
            return proc.stdout.decode().strip()
    return None


def commit_date(path: str, commit: str) -> str:
    """The committer date of ``commit``, ISO 8601 in UTC."""
    raw = _git(path, "cat-file", "commit", commit).stdout
    for line in raw.split(b"\n"):
        if line.startswith(b"committer "):
            seconds = int(line.rsplit(b" ", 2)[1])
            return datetime.fromtimestamp(seconds, UTC).isoformat()
        if not line:  # end of the header, the message follows
            break
    raise UserError(f"{path}: commit {commit} has no committer line")


def _name_from_url(url: str) -> str | None:
    """``owner/name`` from https://host/owner/name.git, git@host:owner/name.git, /srv/owner/name."""
    url = url.strip().rstrip("/").removesuffix(".git")
    parts = [p for p in re.split(r"[/:]", url) if p]
    return "/".join(parts[-2:]) if len(parts) >= 2 else None


def git_repo_name(path: str) -> str:
    proc = _git(path, "config", "--get", "remote.origin.url", check=False)
    name = _name_from_url(proc.stdout.decode("utf-8", "replace")) if proc.returncode == 0 else None
    return name or os.path.basename(os.path.realpath(path)).removesuffix(".git")


def _ls_tree(path: str, commit: str) -> list[tuple[bytes, bytes, int | None, str]]:
    """(mode, object id, size or None, path) of every file of the commit's tree."""
    out = _git(path, "ls-tree", "-r", "-l", "-z", "--full-tree", commit).stdout
    entries = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, name = record.partition(b"\t")
        mode, _type, oid, size = meta.split(maxsplit=3)
        # size is "-" for a submodule, "BAD" for a blob missing from a damaged clone
        n = int(size) if size.strip().isdigit() else None
        entries.append((mode, oid, n, name.decode("utf-8", "surrogateescape")))
    return entries


def git_repo_size(path: str) -> int:
    """Bytes of the default commit's blobs (for balancing sources over tasks)."""
    commit = default_commit(path)
    return sum(size or 0 for _, _, size, _ in _ls_tree(path, commit)) if commit else 0


def _cat(cat: subprocess.Popen, oid: bytes, path: str) -> bytes | None:
    """One blob from a running ``git cat-file --batch``; None when the object is missing."""
    try:
        cat.stdin.write(oid + b"\n")
        cat.stdin.flush()
        header = cat.stdout.readline()
    except BrokenPipeError:
        header = b""
    if not header:
        raise UserError(f"{path}: git cat-file stopped while reading the repository")
    parts = header.split()
    if len(parts) != 3:  # "<oid> missing": a partial or damaged clone
        return None
    data = cat.stdout.read(int(parts[2]))
    cat.stdout.read(1)  # the newline after each object
    return data


def iter_git(path: str, max_file_bytes: int, stat: Callable[..., None] | None = None) -> Iterator[RawFile]:
    """The files of the default commit: license-like first, then by path; one blob in memory."""
    commit = default_commit(path)
    if commit is None:  # an empty repository: no files, not an error
        return
    date = commit_date(path, commit)
    entries = sorted(_ls_tree(path, commit), key=lambda e: file_order(e[3]))
    cat = subprocess.Popen(
        _cmd(path, "cat-file", "--batch"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=_env(path),
    )
    assert cat.stdin is not None and cat.stdout is not None
    try:
        for mode, oid, size, name in entries:
            if mode == _GITLINK_MODE:  # a submodule: another repository's commit, not a file
                if stat:
                    stat("submodules")
                continue
            raw = RawFile(clean_path(name), None, size or 0, oid.decode(), None, commit, date)
            if mode == _SYMLINK_MODE:
                raw.skip_reason = SYMLINK
            elif size is not None and size >= max_file_bytes:
                raw.skip_reason = TOO_LARGE
            else:
                raw.data = _cat(cat, oid, path)
                raw.skip_reason = UNREADABLE if raw.data is None else None
            yield raw
    finally:
        cat.stdin.close()  # cat-file exits at end of input, also when the consumer stopped early
        cat.stdout.close()
        try:
            cat.wait(timeout=30)
        except subprocess.TimeoutExpired:
            cat.kill()
            cat.wait()
