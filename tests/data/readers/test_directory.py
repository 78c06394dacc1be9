"""A plain directory: every regular file, `.git/` excluded, symlinks never followed."""

from __future__ import annotations

import os
import socket

import pytest

from data.readers.builders import by_path, read, reason, write_files
from stackcoder.data.readers.directory import iter_directory
from stackcoder.data.readers.raw import blob_sha1

FILES = {
    "src/main.py": "print('hi')\n",
    "README.md": "# demo\n",
    "LICENSE": "MIT License\n",
    "docs/a.txt": "a\n",
    "empty.txt": "",
    "zeros.bin": b"\0\1\2",
}


def test_blob_ids_equal_git_hash_object(tmp_path, git):
    write_files(tmp_path / "repo", FILES)
    files = {f.path: f for f in iter_directory(str(tmp_path / "repo"), 10_000_000)}
    assert set(files) == set(FILES)
    for name in FILES:
        assert files[name].blob_id == git.hash_object(tmp_path / "repo" / name), name
    assert blob_sha1(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"  # git's well-known empty blob


def test_license_like_first_then_path_order_and_no_dot_git(tmp_path):
    write_files(tmp_path / "repo", {**FILES, ".git/config": "[core]\n", "sub/.git": "gitdir: x\n"})
    paths = [f.path for f in iter_directory(str(tmp_path / "repo"), 10_000_000)]
    assert paths == ["LICENSE", "README.md", "docs/a.txt", "empty.txt", "src/main.py", "zeros.bin"]


def test_symlinks_are_skipped_not_followed(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("do not read me\n")
    write_files(tmp_path / "repo", {"a.py": "x = 1\n"})
    os.symlink(outside, tmp_path / "repo" / "link.txt")
    os.symlink(tmp_path, tmp_path / "repo" / "linkdir")
    docs, _ = read([tmp_path / "repo"])
    files = by_path(docs)
    assert set(files) == {"a.py", "link.txt", "linkdir"}
    for name in ("link.txt", "linkdir"):
        assert reason(files[name]) == "symlink"
        assert files[name].text == ""
    assert all("do not read me" not in d.text for d in docs)


def test_fifo_and_socket_are_unreadable_without_blocking(tmp_path):
    repo = tmp_path / "repo"
    write_files(repo, {"a.py": "x = 1\n"})
    os.mkfifo(repo / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(repo / "sock"))
        docs, reader = read([repo])
    finally:
        sock.close()
    files = by_path(docs)
    assert reason(files["pipe"]) == "unreadable"
    assert reason(files["sock"]) == "unreadable"
    assert reason(files["a.py"]) is None
    assert reader.stats["skipped_unreadable"].total == 2


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_file_without_read_permission_is_unreadable(tmp_path):
    repo = tmp_path / "repo"
    write_files(repo, {"a.py": "x = 1\n", "locked.py": "y = 2\n", "locked_dir/b.py": "z = 3\n"})
    os.chmod(repo / "locked.py", 0)
    os.chmod(repo / "locked_dir", 0)
    try:
        files = by_path(read([repo])[0])
    finally:
        os.chmod(repo / "locked.py", 0o644)
        os.chmod(repo / "locked_dir", 0o755)
    assert reason(files["locked.py"]) == "unreadable"
    assert reason(files["locked_dir"]) == "unreadable"
    assert files["a.py"].text == "x = 1\n"


def test_open_refused_is_unreadable(tmp_path, monkeypatch):
    """What a chmod 000 file gives a non-root user, simulated so that the test also runs as root."""
    repo = tmp_path / "repo"
    write_files(repo, {"a.py": "x = 1\n", "locked.py": "y = 2\n"})
    real_open = os.open

    def refuse(path, *args, **kw):
        if str(path).endswith("locked.py"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kw)

    monkeypatch.setattr(os, "open", refuse)
    files = {f.path: f for f in iter_directory(str(repo), 10_000_000)}
    assert files["locked.py"].skip_reason == "unreadable"
    assert files["a.py"].data == b"x = 1\n"


def test_ten_megabyte_file_is_too_large_and_smaller_is_read(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    with open(repo / "big.txt", "wb") as f:  # sparse: 10 MB without writing them
        f.truncate(10_000_000)
    (repo / "ok.txt").write_text("x" * 999)
    docs, reader = read([repo])
    files = by_path(docs)
    assert reason(files["big.txt"]) == "too_large"
    assert files["big.txt"].metadata["length_bytes"] == 10_000_000
    assert files["big.txt"].metadata["blob_id"] is None  # never read
    assert reason(files["ok.txt"]) is None
    # the boundary: "files under max_file_bytes" are kept
    files = by_path(read([repo], reader_kw={"max_file_bytes": 999})[0])
    assert reason(files["ok.txt"]) == "too_large"
    files = by_path(read([repo], reader_kw={"max_file_bytes": 1000})[0])
    assert reason(files["ok.txt"]) is None


def test_binary_and_undecodable_files(tmp_path):
    repo = tmp_path / "repo"
    write_files(repo, {"nul.dat": b"GIF89a\0\0\1", "bad.txt": bytes(range(128, 256)) * 8, "ok.txt": "ok\n"})
    docs, reader = read([repo], reader_kw={"charset_detection": False})
    files = by_path(docs)
    assert reason(files["nul.dat"]) == "binary"
    assert files["nul.dat"].metadata["blob_id"] == blob_sha1(b"GIF89a\0\0\1")
    assert reason(files["bad.txt"]) == "undecodable"
    assert files["ok.txt"].metadata["src_encoding"] == "UTF-8"
    assert reader.stats["skipped_binary"].total == 1
