"""SOURCE arguments: kinds, --repos-dir, and every bad SOURCE refused up front with its path."""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import asdict

import pytest

from data.readers.builders import CAPS, make_tar, make_zip, write_files
from stackcoder.data.readers import Source, discover_sources
from stackcoder.errors import UserError


def discover(paths, **kw):
    return discover_sources([str(p) for p in paths], **{**CAPS, **kw})


def test_kinds_are_detected(tmp_path, git):
    write_files(tmp_path / "plain", {"a.py": "a = 1\n"})
    git.repo(tmp_path / "work", {"b.py": "b = 2\n"})
    tar = make_tar(tmp_path / "pkg-1.0.tar.gz", {"pkg-1.0/c.py": "c = 3\n"})
    table = tmp_path / "part.jsonl"
    table.write_text(json.dumps({"repo_name": "x/y", "path": "d.py", "content": "d = 4\n"}) + "\n")
    sources = discover([tmp_path / "plain", tmp_path / "work", tar, table])
    assert [(s.kind, s.repo_name) for s in sources] == [
        ("dir", "plain"),
        ("git", "work"),
        ("archive", "pkg-1.0"),
        ("table", "part"),
    ]
    assert [s.label for s in sources] == [str(p) for p in (tmp_path / "plain", tmp_path / "work", tar, table)]
    assert sources[0].size_bytes == 6
    assert sources[1].size_bytes == 6
    assert sources[2].size_bytes == 6


def test_source_is_picklable_and_json_friendly(tmp_path):
    write_files(tmp_path / "plain", {"a.py": "a = 1\n"})
    (source,) = discover([tmp_path / "plain"])
    assert pickle.loads(pickle.dumps(source)) == source
    assert json.loads(json.dumps(asdict(source)))["repo_name"] == "plain"


def test_repos_dir(tmp_path, git):
    repos = tmp_path / "repos"
    write_files(repos / "zeta", {"z.py": "z\n"})
    git.repo(repos / "alpha", {"a.py": "a\n"})
    git(tmp_path, "clone", "-q", "--bare", str(repos / "alpha"), str(repos / "beta.git"))
    make_zip(repos / "gamma.zip", {"g.py": "g\n"})
    write_files(repos, {".hidden/x.py": "x\n", ".DS_Store": "junk"})
    sources = discover([repos], repos_dir=True)
    assert [(os.path.basename(s.path), s.kind) for s in sources] == [
        ("alpha", "git"),
        ("beta.git", "git"),
        ("gamma.zip", "archive"),
        ("zeta", "dir"),
    ]
    assert sources[1].repo_name == "repos/alpha"  # owner/name from the origin path .../repos/alpha
    assert sources[3].label == str(repos / "zeta")


def test_repos_dir_refuses_other_files_and_non_directories(tmp_path):
    repos = tmp_path / "repos"
    write_files(repos, {"ok/a.py": "a\n", "notes.txt": "n\n", "data.csv": "x\n"})
    with pytest.raises(
        UserError, match=r"repos: not a repository, a git repository or an archive: data.csv, notes"
    ):
        discover([repos], repos_dir=True)
    with pytest.raises(UserError, match="--repos-dir needs a directory"):
        discover([repos / "notes.txt"], repos_dir=True)
    with pytest.raises(UserError, match="no such file"):
        discover([tmp_path / "nope"], repos_dir=True)


def test_missing_broken_and_unknown(tmp_path):
    with pytest.raises(UserError, match=r"missing: no such file or directory"):
        discover([tmp_path / "missing"])
    os.symlink(tmp_path / "gone", tmp_path / "dangling")
    with pytest.raises(UserError, match="dangling: a broken symlink"):
        discover([tmp_path / "dangling"])
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(UserError, match="notes.txt: unknown kind of SOURCE"):
        discover([tmp_path / "notes.txt"])
    with pytest.raises(UserError, match="--source-type must be one of"):
        discover([tmp_path], source_type="svn")
    with pytest.raises(UserError, match="no SOURCE given"):
        discover([])


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_source(tmp_path):
    locked = tmp_path / "locked"
    write_files(locked, {"a.py": "a\n"})
    os.chmod(locked, 0)
    try:
        with pytest.raises(UserError, match="locked: permission denied"):
            discover([locked])
    finally:
        os.chmod(locked, 0o755)


def test_forced_types_that_do_not_fit(tmp_path):
    write_files(tmp_path / "plain", {"a.py": "a\n"})
    tar = make_tar(tmp_path / "x.tar.gz", {"a.py": "a\n"})
    with pytest.raises(UserError, match="--source-type git needs a directory"):
        discover([tar], source_type="git")
    with pytest.raises(UserError, match="--source-type archive needs a file"):
        discover([tmp_path / "plain"], source_type="archive")
    with pytest.raises(UserError, match="a table must be one of"):
        discover([tar], source_type="table")


def test_git_work_tree_read_as_plain_directory_when_asked(tmp_path, git):
    git.repo(tmp_path / "work", {"b.py": "b\n"})
    (source,) = discover([tmp_path / "work"], source_type="dir")
    assert source.kind == "dir"


def test_same_source_twice(tmp_path):
    write_files(tmp_path / "plain", {"a.py": "a\n"})
    with pytest.raises(UserError, match="given twice"):
        discover([tmp_path / "plain", f"{tmp_path}/./plain"])


def test_source_fields():
    s = Source("dir", "p", "p", "p", 0)
    assert s.metadata == {}
