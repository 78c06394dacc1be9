"""RepositoryReader: whole repositories per rank, license-like files first, every file accounted for."""

from __future__ import annotations

import pickle
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datatrove.data import Document

from data.readers.builders import CAPS, make_tar, make_zip, read, reason, tar_member, write_files
from stackcoder.data import fields as F
from stackcoder.data.readers import discover_sources
from stackcoder.data.readers.reader import RepositoryReader
from stackcoder.data.step import is_removed
from stackcoder.errors import UserError

REPO = {
    "src/main.py": "print('hi')\n",
    "LICENSE": "MIT License\n",
    "a.py": "a = 1\n",
    "docs/NOTICE": "notice\n",
    "blob.bin": b"\x89PNG\0\0",
}
LICENSES_FIRST = ["LICENSE", "docs/NOTICE", "a.py", "blob.bin", "src/main.py"]


def every_kind(tmp_path, git) -> list:
    """The same repository as a directory, a git repository, a tar.gz, a zip and a table."""
    write_files(tmp_path / "plain", REPO)
    git.repo(tmp_path / "work", REPO)
    tar = make_tar(tmp_path / "proj.tar.gz", {f"proj/{k}": v for k, v in REPO.items()})
    zipped = make_zip(tmp_path / "proj.zip", REPO)
    table = tmp_path / "t.parquet"
    rows = [{"repo_name": "t/t", "path": k, "content": v} for k, v in REPO.items() if isinstance(v, str)]
    pq.write_table(pa.Table.from_pylist(rows), table)
    return [tmp_path / "plain", tmp_path / "work", tar, zipped, table]


def test_license_like_first_in_every_kind(tmp_path, git):
    docs, _ = read(every_kind(tmp_path, git))
    by_source: dict[str, list[str]] = {}
    for d in docs:
        by_source.setdefault(d.metadata[F.SOURCE], []).append(d.metadata[F.PATH])
    for source, paths in by_source.items():
        # the table has no binary record: its content column is text
        expected = [p for p in LICENSES_FIRST if not (source.endswith(".parquet") and p == "blob.bin")]
        if source.endswith(".tar.gz"):  # a tar's other files come in archive order
            assert paths[:2] == expected[:2] and sorted(paths[2:]) == sorted(expected[2:]), source
        else:
            assert paths == expected, source


def test_document_shape_and_skipped_files(tmp_path, git):
    docs, reader = read(every_kind(tmp_path, git)[:2])
    expected_keys = {
        F.BLOB_ID, F.REPO_NAME, F.PATH, F.LENGTH_BYTES, F.SRC_ENCODING, F.REVISION_ID,
        F.REVISION_DATE, F.STARS, F.FORKS, F.HOST_LICENSE, F.SOURCE,
    }  # fmt: skip
    for d in docs:
        assert expected_keys <= set(d.metadata)
        assert d.id == f"{d.metadata[F.REPO_NAME]}:{d.metadata[F.PATH]}"
    binary = [d for d in docs if d.metadata[F.PATH] == "blob.bin"]
    assert len(binary) == 2
    for d in binary:
        assert is_removed(d)
        assert d.metadata[F.REMOVED_STAGE] == "ingest"
        assert reason(d) == "binary"
        assert d.text == "" and d.metadata[F.SRC_ENCODING] is None
    assert reader.stats["files"].total == len(docs) == 10
    assert reader.stats["skipped_binary"].total == 2
    assert reader.stats["bytes"].total == 2 * sum(
        len(v if isinstance(v, bytes) else v.encode()) for v in REPO.values()
    )


def test_sharding_union_equals_single_rank(tmp_path, git):
    paths = every_kind(tmp_path, git)
    write_files(tmp_path / "small", {"x.py": "x\n"})
    paths.append(tmp_path / "small")
    single, _ = read(paths)
    sources = discover_sources([str(p) for p in paths], **CAPS)
    reader = RepositoryReader(sources)
    shards = [list(RepositoryReader(sources).run(None, r, 3)) for r in range(3)]
    assert sorted(d.id for s in shards for d in s) == sorted(d.id for d in single)
    for r in range(3):  # whole repositories per rank, largest first, dealt round-robin
        assigned = reader.assigned(r, 3)
        assert {d.metadata[F.SOURCE] for d in shards[r]} <= {s.label for s in assigned}
    order = reader.assigned(0, 1)
    assert [s.size_bytes for s in order] == sorted((s.size_bytes for s in order), reverse=True)
    assert reader.assigned(0, 3) == order[0::3]


def test_reader_pickles(tmp_path):
    write_files(tmp_path / "plain", {"a.py": "a\n"})
    reader = RepositoryReader(discover_sources([str(tmp_path / "plain")], **CAPS), max_file_bytes=1234)
    copy = pickle.loads(pickle.dumps(reader))
    assert copy.max_file_bytes == 1234
    assert [d.text for d in copy.run(None)] == ["a\n"]


def test_upstream_documents_pass_through_first(tmp_path):
    write_files(tmp_path / "plain", {"a.py": "a\n"})
    reader = RepositoryReader(discover_sources([str(tmp_path / "plain")], **CAPS))
    docs = list(reader.run(iter([Document(text="up", id="up")])))
    assert [d.id for d in docs] == ["up", "plain:a.py"]


def test_archive_bomb_while_reading_is_an_error_not_a_silent_stop(tmp_path):
    path = tmp_path / "grows.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for i in range(5):
            tar_member(tar, f"f{i}.txt", "x" * 1000)
    (source,) = discover_sources([str(path)], **CAPS)
    reader = RepositoryReader([source], max_archive_bytes=2500)
    with pytest.raises(UserError, match="max_archive_bytes"):
        list(reader.run(None))
