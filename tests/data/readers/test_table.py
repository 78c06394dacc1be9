"""Tables in The Stack v2 schema: records regrouped by repository, existing labels carried over."""

from __future__ import annotations

import gzip
import json
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data.readers.builders import by_path, read, reason
from stackcoder.data.readers.raw import blob_sha1
from stackcoder.errors import UserError

# shuffled on purpose: repositories interleave and licenses come late
RECORDS = [
    {"repo_name": "b/two", "path": "src/x.py", "content": "x = 1\n", "language": "Python"},
    {"repo_name": "a/one", "path": "main.go", "content": "package main\n", "language": "Go"},
    {"repo_name": "b/two", "path": "LICENSE", "content": "MIT License\n", "license_type": "permissive"},
    {"repo_name": "a/one", "path": "README.md", "content": "# one\n", "detected_licenses": ["mit"]},
    {"repo_name": "b/two", "path": "bin/blob", "content": "a\0b"},
    {"repo_name": "a/one", "path": "gone.txt", "content": None},
    {"repo_name": "b/two", "path": "a.py", "content": "a = 1\n", "blob_id": "f" * 40, "star_events_count": 7},
]
ORDER = [
    ("a/one", "README.md"),
    ("a/one", "gone.txt"),
    ("a/one", "main.go"),
    ("b/two", "LICENSE"),
    ("b/two", "a.py"),
    ("b/two", "bin/blob"),
    ("b/two", "src/x.py"),
]


def write_parquet(path, records, row_group_size=2):
    keys = dict.fromkeys(k for rec in records for k in rec)  # from_pylist would take the first row's
    table = pa.Table.from_pydict({k: [rec.get(k) for rec in records] for k in keys})
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def write_jsonl(path, records, opener=open):
    with opener(path, "wt") as f:
        for rec in records:
            f.write(json.dumps(rec) + "\n")
    return path


def check(docs):
    assert [(d.metadata["repo_name"], d.metadata["path"]) for d in docs] == ORDER
    files = by_path(docs)
    assert files["main.go"].metadata["language"] == "Go"
    assert files["README.md"].metadata["detected_licenses"] == ["mit"]
    assert files["LICENSE"].metadata["license_type"] == "permissive"
    assert "language" not in files["LICENSE"].metadata  # null labels are not carried
    assert files["a.py"].metadata["blob_id"] == "f" * 40  # an existing id is kept
    assert files["a.py"].metadata["star_events_count"] == 7
    assert files["src/x.py"].metadata["blob_id"] == blob_sha1(b"x = 1\n")  # a missing one is computed
    assert files["src/x.py"].text == "x = 1\n"
    assert reason(files["bin/blob"]) == "binary"
    assert reason(files["gone.txt"]) == "no_content"
    assert files["main.go"].id == "a/one:main.go"


def test_parquet_row_groups_are_regrouped_by_repository(tmp_path):
    docs, _ = read([write_parquet(tmp_path / "part-0.parquet", RECORDS)])
    check(docs)


@pytest.mark.parametrize("suffix, opener", [(".jsonl", open), (".jsonl.gz", gzip.open)])
def test_jsonl(tmp_path, suffix, opener):
    path = write_jsonl(tmp_path / f"part-0{suffix}", RECORDS, opener)
    check(read([path])[0])


def test_jsonl_zst(tmp_path):
    if not pa.Codec.is_available("zstd"):
        pytest.skip("this pyarrow has no zstd codec")
    data = "".join(json.dumps(r) + "\n" for r in RECORDS).encode()
    path = tmp_path / "part-0.jsonl.zst"
    path.write_bytes(pa.compress(data, codec="zstd", asbytes=True))
    check(read([path])[0])


def test_timestamps_become_iso_strings(tmp_path):
    rec = {
        "repo_name": "r/r",
        "path": "a.py",
        "content": "a\n",
        "revision_date": datetime(2023, 9, 6, 12, 30),
    }
    docs, _ = read([write_parquet(tmp_path / "t.parquet", [rec])])
    assert docs[0].metadata["revision_date"] == "2023-09-06T12:30:00"


def test_blob_ids_only_is_refused_with_a_hint(tmp_path):
    ids_only = [{"repo_name": "r/r", "path": "a.py", "blob_id": "0" * 40}]
    for path in (
        write_parquet(tmp_path / "ids.parquet", ids_only),
        write_jsonl(tmp_path / "ids.jsonl", ids_only),
    ):
        with pytest.raises(
            UserError, match=r"no `content` column; The Stack v2 on the Hugging Face Hub ships blob"
        ):
            read([path])


def test_malformed_jsonl_line_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(RECORDS[0]) + "\n\n{oops\n")
    with pytest.raises(UserError, match=r"bad.jsonl:3: not a JSON record"):
        read([path])
    path.write_text(json.dumps(RECORDS[0]) + '\n{"path": "no-repo.py", "content": ""}\n')
    with pytest.raises(UserError, match=r"bad.jsonl:2: a record without repo_name or path"):
        read([path])


def test_corrupt_parquet(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 not really")
    with pytest.raises(UserError, match="broken.parquet: not a readable parquet file"):
        read([path])


def test_empty_table_has_no_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert read([empty])[0] == []
