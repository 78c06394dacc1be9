"""Archives: streamed, never extracted; hostile members skipped; bombs and corrupt files refused."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from data.readers.builders import CAPS, by_path, make_tar, make_zip, read, reason, tar_member
from stackcoder.data.readers.archive import iter_archive, member_path, scan_archive
from stackcoder.data.readers.raw import blob_sha1
from stackcoder.errors import UserError

FILES = {
    "proj/src/lib.py": "def f():\n    return 1\n",
    "proj/COPYING": "GPL text\n",
    "proj/README.rst": "Proj\n",
    "proj/z.py": "z = 1\n",
}
EXPECTED = ["COPYING", "README.rst", "src/lib.py", "z.py"]


@pytest.mark.parametrize(
    "name, mode",
    [
        ("proj.tar.gz", "w:gz"),
        ("proj.tgz", "w:gz"),
        ("proj.tar.bz2", "w:bz2"),
        ("proj.tar.xz", "w:xz"),
        ("proj.tar", "w"),
    ],
)
def test_tar_kinds(tmp_path, name, mode):
    docs, _ = read([make_tar(tmp_path / name, FILES, mode)])
    assert [d.metadata["path"] for d in docs] == EXPECTED  # top dir stripped, license-like first
    for d in docs:
        assert d.metadata["repo_name"] == "proj"
        assert d.text == FILES[f"proj/{d.metadata['path']}"]
        assert d.metadata["blob_id"] == blob_sha1(d.text.encode())


def test_zip(tmp_path):
    docs, _ = read([make_zip(tmp_path / "proj.zip", FILES)])
    assert [d.metadata["path"] for d in docs] == EXPECTED
    assert {d.metadata["repo_name"] for d in docs} == {"proj"}


def test_sdist_and_npm_names(tmp_path):
    sdist = make_tar(
        tmp_path / "name-1.0.tar.gz", {"name-1.0/setup.py": "setup()\n", "name-1.0/PKG-INFO": "x\n"}
    )
    manifest = json.dumps({"name": "@scope/left-pad", "version": "1.3.0"})
    npm = make_tar(
        tmp_path / "left-pad-1.3.0.tgz", {"package/package.json": manifest, "package/index.js": "1;\n"}
    )
    broken = make_tar(
        tmp_path / "broken-2.0.0.tgz", {"package/package.json": "{not json", "package/a.js": "2;\n"}
    )
    docs, _ = read([sdist, npm, broken])
    names = {d.metadata["source"]: d.metadata["repo_name"] for d in docs}
    assert names == {str(sdist): "name-1.0", str(npm): "@scope/left-pad", str(broken): "broken-2.0.0"}
    assert sorted(d.metadata["path"] for d in docs if d.metadata["source"] == str(sdist)) == [
        "PKG-INFO",
        "setup.py",
    ]
    assert "index.js" in {d.metadata["path"] for d in docs}


def test_no_strip_when_members_do_not_share_a_top_directory(tmp_path):
    docs, _ = read([make_tar(tmp_path / "flat.tar.gz", {"a/x.py": "1\n", "b.py": "2\n"})])
    assert sorted(d.metadata["path"] for d in docs) == ["a/x.py", "b.py"]


def test_hostile_tar_members_are_skipped_and_nothing_is_written(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("outside\n")
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar_member(tar, "ok.py", "ok = 1\n")
        tar_member(tar, "../escape.txt", "escaped\n")
        tar_member(tar, "/tmp/absolute.txt", "absolute\n")
        tar_member(tar, "link", kind=tarfile.SYMTYPE, link=str(secret))
        tar_member(tar, "up", kind=tarfile.SYMTYPE, link="../../..")
        tar_member(tar, "hard", kind=tarfile.LNKTYPE, link="ok.py")
        tar_member(tar, "dev", kind=tarfile.FIFOTYPE)
    before = sorted(p.name for p in tmp_path.iterdir())
    docs, reader = read([path])
    files = by_path(docs)
    assert reason(files["ok.py"]) is None
    assert reason(files["../escape.txt"]) == "unsafe_path"
    assert reason(files["/tmp/absolute.txt"]) == "unsafe_path"
    for name in ("link", "up", "hard"):
        assert reason(files[name]) == "link", name
    assert reason(files["dev"]) == "unreadable"
    assert all(d.text == "" for d in docs if reason(d))
    assert "outside" not in "".join(d.text for d in docs)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing extracted anywhere
    assert reader.stats["skipped_link"].total == 3


def test_hostile_zip_members(tmp_path):
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ok.py", "ok = 1\n")
        zf.writestr("../../escape.txt", "escaped\n")
        zf.writestr("C:/windows.txt", "drive\n")
        zf.writestr("..\\dotdot.txt", "backslash\n")
        link = zipfile.ZipInfo("link")
        link.external_attr = (0o120777 << 16) | 0  # a symlink, as Info-ZIP stores one
        zf.writestr(link, "/etc/passwd")
    files = by_path(read([path])[0])
    assert reason(files["ok.py"]) is None
    assert reason(files["../../escape.txt"]) == "unsafe_path"
    assert reason(files["C:/windows.txt"]) == "unsafe_path"
    assert reason(files["..\\dotdot.txt"]) == "unsafe_path"
    assert reason(files["link"]) == "link"


@pytest.mark.parametrize("name", ["a", "./a/b", "a//b"])
def test_member_path_safe(name):
    assert member_path(name) == name.lstrip("./").replace("//", "/")


def test_tar_gz_bomb_is_refused_before_and_while_reading(tmp_path):
    path = tmp_path / "bomb.tar.gz"
    make_tar(path, {"zeros.txt": b"\0" * 2_000_000})
    assert path.stat().st_size < 10_000  # small on disk, 2 MB inside
    with pytest.raises(UserError, match="bomb.tar.gz: expands to more than 1,000,000 bytes"):
        read([path], max_archive_bytes=1_000_000, max_archive_members=100)
    with pytest.raises(UserError, match="max_archive_bytes"):  # defense in depth: the reader checks too
        list(iter_archive(str(path), 10_000_000, 1_000_000, 100))


def test_too_many_members(tmp_path):
    path = make_tar(tmp_path / "many.tar.gz", {f"f{i}.txt": "x\n" for i in range(20)})
    with pytest.raises(UserError, match="more than 10 members"):
        scan_archive(str(path), "tar", 10**9, 10)
    zpath = make_zip(tmp_path / "many.zip", {f"f{i}.txt": "x\n" for i in range(20)})
    with pytest.raises(UserError, match="more than 10 members"):
        read([zpath], max_archive_bytes=10**9, max_archive_members=10)


def test_zip_bomb(tmp_path):
    path = make_zip(tmp_path / "bomb.zip", {"zeros.txt": b"\0" * 2_000_000})
    with pytest.raises(UserError, match="bomb.zip: expands to more than"):
        read([path], max_archive_bytes=1_000_000, max_archive_members=100)
    with pytest.raises(UserError, match="max_archive_bytes"):
        list(iter_archive(str(path), 10_000_000, 1_000_000, 100))


def test_corrupt_archives(tmp_path):
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"this is not gzip at all" * 10)
    with pytest.raises(UserError, match="garbage.tar.gz"):
        read([garbage])
    good = make_tar(tmp_path / "good.tar.gz", {f"d/f{i}.py": f"x = {i}\n" * 500 for i in range(50)})
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(UserError, match="truncated.tar.gz: corrupt archive"):
        read([truncated])
    not_tar = tmp_path / "not-a-tar.tar.gz"
    not_tar.write_bytes(gzip.compress(b"plain text, gzipped, but not a tar\n" * 30))
    with pytest.raises(UserError, match="not-a-tar.tar.gz"):
        read([not_tar])
    bad_zip = tmp_path / "bad.zip"
    bad_zip.write_bytes(b"PK\x03\x04 but then nothing sensible")
    with pytest.raises(UserError, match="bad.zip: not a readable zip archive"):
        read([bad_zip])


def test_damaged_zip_member_is_skipped_the_rest_is_read(tmp_path):
    path = make_zip(
        tmp_path / "proj.zip", {"a.py": "a = 1\n", "b.py": "UNIQUE-PAYLOAD\n"}, zipfile.ZIP_STORED
    )
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b"UNIQUE-PAYLOAD", b"unique-payload"))  # the CRC no longer matches
    files = by_path(read([path])[0])
    assert reason(files["b.py"]) == "unreadable"
    assert files["a.py"].text == "a = 1\n"


def test_duplicate_member_last_one_wins(tmp_path):
    path = tmp_path / "dup.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar_member(tar, "LICENSE", "old license\n")
        tar_member(tar, "a.py", "old\n")
        tar_member(tar, "a.py", "new\n")
        tar_member(tar, "LICENSE", "new license\n")
    docs, _ = read([path])
    live = {d.metadata["path"]: d.text for d in docs if not reason(d)}
    assert live == {"LICENSE": "new license\n", "a.py": "new\n"}
    assert sorted(reason(d) for d in docs if reason(d)) == ["duplicate_path", "duplicate_path"]


def test_duplicate_zip_member_spelled_differently(tmp_path):
    path = tmp_path / "dup.zip"
    with zipfile.ZipFile(path, "w") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("a.py", "old\n")
        zf.writestr("./a.py", "new\n")
        zf.writestr("a.py", "newest\n")
    docs, _ = read([path])
    assert [(d.text, reason(d)) for d in docs] == [
        ("", "duplicate_path"),
        ("", "duplicate_path"),
        ("newest\n", None),
    ]


def test_tar_license_files_come_first_even_when_last_in_the_archive(tmp_path):
    path = tmp_path / "late.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name in ("pkg/b.py", "pkg/a.py", "pkg/sub/NOTICE", "pkg/LICENSE.txt"):
            tar_member(tar, name, f"{name}\n")
    paths = [d.metadata["path"] for d in read([path])[0]]
    assert paths == ["LICENSE.txt", "sub/NOTICE", "b.py", "a.py"]  # the rest in archive order


def test_too_large_member_is_not_read(tmp_path):
    path = make_tar(tmp_path / "p.tar.gz", {"big.txt": "x" * 3000, "small.txt": "y\n"})
    files = by_path(read([path], reader_kw={"max_file_bytes": 3000})[0])
    assert reason(files["big.txt"]) == "too_large"
    assert files["big.txt"].metadata["length_bytes"] == 3000
    assert files["small.txt"].text == "y\n"


def test_forced_archive_type_sniffs_the_content(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.py", "a = 1\n")
    odd = tmp_path / "download.bin"
    odd.write_bytes(buf.getvalue())
    with pytest.raises(UserError, match="unknown kind of SOURCE"):
        read([odd])
    files = by_path(read([odd], source_type="archive")[0])
    assert files["a.py"].text == "a = 1\n"
    assert CAPS  # the shared caps are what read() used above


def test_truncated_at_a_header_or_damaged_header_is_corrupt(tmp_path):
    """Past the first member tarfile takes these for the end of the archive; we do not."""
    good = make_tar(tmp_path / "good.tar", {"a.txt": "a" * 512, "b.txt": "b" * 512}, mode="w")
    raw = good.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(raw[:1024])  # a's header and data, then nothing: no end-of-archive marker
    damaged = tmp_path / "damaged.tar"
    damaged.write_bytes(raw[:1024] + b"garbage!" * 64 + raw[1536:])  # b's header overwritten
    for path in (cut, damaged):
        with pytest.raises(UserError, match="corrupt archive"):
            read([path])
        with pytest.raises(UserError, match="corrupt archive"):
            list(iter_archive(str(path), 10_000_000, 10**9, 100))
    assert len(read([good])[0]) == 2


def test_real_npm_tarball():
    """`npm pack ms@2.1.3`, shipped for the demo corpus tests."""
    path = Path(__file__).parents[2] / "fixtures" / "demo" / "ms-2.1.3.tgz"
    if not path.is_file():
        pytest.skip("tests/fixtures/demo/ms-2.1.3.tgz is not there")
    docs, _ = read([path])
    assert [d.metadata["path"] for d in docs] == ["license.md", "readme.md", "index.js", "package.json"]
    assert {d.metadata["repo_name"] for d in docs} == {"ms"}
    assert all(d.metadata["src_encoding"] == "UTF-8" for d in docs)
    assert sum(d.metadata["length_bytes"] for d in docs) == 3024 + 732 + 1079 + 1886
