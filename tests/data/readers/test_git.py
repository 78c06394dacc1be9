"""A git repository: the default branch's latest commit, blobs from git, never the work tree."""

from __future__ import annotations

import os

import pytest

from data.readers.builders import CAPS, COMMIT_DATE, by_path, read, reason
from stackcoder.data.readers import discover_sources
from stackcoder.data.readers.git import _name_from_url, iter_git
from stackcoder.errors import UserError

FILES = {"LICENSE": "MIT License\n", "src/app.py": "print('app')\n", "README.md": "# app\n", "b.txt": "b\n"}


def test_blob_ids_revision_and_date_come_from_git(tmp_path, git):
    repo = tmp_path / "app"
    commit = git.repo(repo, FILES)
    docs, _ = read([repo])
    files = by_path(docs)
    assert list(files) == ["LICENSE", "README.md", "b.txt", "src/app.py"]  # license-like first
    for name in FILES:
        meta = files[name].metadata
        assert meta["blob_id"] == git.hash_object(repo / name)
        assert meta["revision_id"] == commit
        assert meta["revision_date"] == COMMIT_DATE
        assert files[name].text == FILES[name]
        assert files[name].id == f"app:{name}"


def test_reads_the_committed_tree_not_the_work_tree(tmp_path, git):
    repo = tmp_path / "app"
    git.repo(repo, FILES)
    (repo / "b.txt").write_text("edited, not committed\n")
    (repo / "untracked.py").write_text("x = 1\n")
    (repo / "src" / "app.py").unlink()
    files = by_path(read([repo])[0])
    assert set(files) == set(FILES)
    assert files["b.txt"].text == "b\n"


def test_work_tree_on_a_feature_branch_reads_main(tmp_path, git):
    repo = tmp_path / "app"
    main = git.repo(repo, FILES)
    git(repo, "checkout", "-q", "-b", "feature")
    git.commit(repo, {"feature.py": "new = True\n"})
    files = by_path(read([repo])[0])
    assert "feature.py" not in files
    assert {f.metadata["revision_id"] for f in files.values()} == {main}


def test_master_when_there_is_no_main(tmp_path, git):
    repo = tmp_path / "old"
    master = git.repo(repo, {"a.c": "int main;\n"}, branch="master")
    git(repo, "checkout", "-q", "-b", "topic")
    git.commit(repo, {"topic.c": "int t;\n"})
    files = by_path(read([repo])[0])
    assert set(files) == {"a.c"}
    assert files["a.c"].metadata["revision_id"] == master


def test_clone_follows_origin_head_and_bare_clone_follows_head(tmp_path, git):
    upstream = tmp_path / "upstream"
    git.repo(upstream, {"main.py": "m = 1\n"})
    git(upstream, "checkout", "-q", "-b", "develop")
    develop = git.commit(upstream, {"dev.py": "d = 1\n"})  # upstream's HEAD is now `develop`
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(upstream), str(clone))
    git(clone, "checkout", "-q", "-b", "mine", "origin/main")  # a local `main`-less work tree elsewhere
    bare = tmp_path / "mirror.git"
    git(tmp_path, "clone", "-q", "--bare", str(upstream), str(bare))
    docs, _ = read([clone, bare])
    for label in (str(clone), str(bare)):
        files = {d.metadata["path"]: d for d in docs if d.metadata["source"] == label}
        assert set(files) == {"main.py", "dev.py"}, label
        assert files["dev.py"].metadata["revision_id"] == develop


def test_repo_name_from_origin_or_directory(tmp_path, git):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "plain"
    for repo in (a, b, c):
        git.repo(repo, {"x.py": "x = 1\n"})
    git(a, "remote", "add", "origin", "https://github.com/octo/hello-world.git")
    git(b, "remote", "add", "origin", "git@github.com:bigcode/the-stack.git")
    bare = tmp_path / "tool.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    docs, _ = read([a, b, c, bare])
    names = sorted({d.metadata["repo_name"] for d in docs})
    assert names == ["bigcode/the-stack", "octo/hello-world", "plain"]
    assert discover_sources([str(bare)], **CAPS)[0].repo_name == "tool"


@pytest.mark.parametrize(
    "url, name",
    [
        ("https://github.com/owner/name.git", "owner/name"),
        ("ssh://git@gitlab.com/group/proj/", "group/proj"),
        ("git@github.com:owner/name.git", "owner/name"),
        ("/srv/mirrors/owner/name.git", "owner/name"),
        ("name", None),
    ],
)
def test_name_from_url(url, name):
    assert _name_from_url(url) == name


def test_empty_repository_has_no_files(tmp_path, git):
    repo = tmp_path / "empty"
    repo.mkdir()
    git(repo, "init", "-q")
    bare = tmp_path / "empty.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    docs, reader = read([repo, bare])
    assert docs == []
    assert reader.stats["sources"].total == 2


def test_plain_directory_as_git_is_an_error(tmp_path, git):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.py").write_text("x = 1\n")
    with pytest.raises(UserError, match="plain: not a git repository"):
        read([plain], source_type="git")
    # also inside a repository: git must not walk up to the enclosing one
    outer = tmp_path / "outer"
    git.repo(outer, {"sub/a.py": "x = 1\n"})
    with pytest.raises(UserError, match="not a git repository"):
        read([outer / "sub"], source_type="git")
    fake = tmp_path / "fake.git"
    fake.mkdir()
    with pytest.raises(UserError, match="fake.git: not a git repository"):
        read([fake])


def test_submodules_are_counted_not_yielded_and_symlinks_skipped(tmp_path, git):
    repo = tmp_path / "app"
    commit = git.repo(repo, {"a.py": "x = 1\n"})
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{commit},vendor/lib")
    os.symlink("a.py", repo / "link.py")
    git(repo, "add", "link.py")
    git(repo, "commit", "-q", "-m", "submodule and link")
    docs, reader = read([repo])
    files = by_path(docs)
    assert set(files) == {"a.py", "link.py"}
    assert reason(files["link.py"]) == "symlink"
    assert reader.stats["submodules"].total == 1
    assert reader.stats["skipped_symlink"].total == 1


def test_too_large_blob_is_not_read(tmp_path, git):
    repo = tmp_path / "app"
    git.repo(repo, {"big.txt": "x" * 5000, "small.txt": "y\n"})
    raws = {r.path: r for r in iter_git(str(repo), max_file_bytes=5000)}
    assert raws["big.txt"].skip_reason == "too_large"
    assert raws["big.txt"].data is None
    assert raws["big.txt"].size == 5000
    assert raws["big.txt"].blob_id == git.hash_object(repo / "big.txt")  # from the tree listing
    assert raws["small.txt"].data == b"y\n"


def test_stopping_early_closes_cat_file(tmp_path, git):
    repo = tmp_path / "app"
    git.repo(repo, {f"f{i}.py": f"x = {i}\n" for i in range(20)})
    files = iter_git(str(repo), 10_000_000)
    assert next(files).data == b"x = 0\n"
    files.close()  # must not hang or leak the cat-file process


def test_missing_blob_is_unreadable(tmp_path, git):
    repo = tmp_path / "app"
    git.repo(repo, {"a.py": "a = 1\n", "b.py": "b = 2\n"})
    oid = git.hash_object(repo / "b.py")
    (repo / ".git" / "objects" / oid[:2] / oid[2:]).unlink()  # a damaged clone
    files = by_path(read([repo])[0])
    assert reason(files["b.py"]) == "unreadable"
    assert files["b.py"].metadata["blob_id"] == oid
    assert files["a.py"].text == "a = 1\n"
