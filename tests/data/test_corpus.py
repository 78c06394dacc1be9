import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stackcoder.data.corpus import Corpus, resolve_inputs
from stackcoder.errors import UserError


def write_parquet(path, column, texts):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({column: texts, "language": ["Python"] * len(texts)}), path, compression="zstd")


def test_dataset_dir_reads_files_content(tmp_path):
    write_parquet(tmp_path / "files" / "00000.parquet", "content", ["a = 1\n", None, "", "b = 2\n"])
    corpus = Corpus([tmp_path])
    assert list(corpus) == ["a = 1\n", "b = 2\n"]  # null and empty rows skipped
    assert (corpus.n_texts, corpus.n_bytes) == (2, 12)


def test_documents_are_preferred_over_files(tmp_path):
    write_parquet(tmp_path / "files" / "00000.parquet", "content", ["file"])
    write_parquet(tmp_path / "documents" / "00000.parquet", "text", ["<repo_name>a/b<file_sep>x\nfile"])
    assert list(Corpus([tmp_path])) == ["<repo_name>a/b<file_sep>x\nfile"]


def test_shards_are_interleaved_so_a_sample_spans_all_of_them(tmp_path):
    write_parquet(tmp_path / "files" / "00000.parquet", "content", [f"python {i}" for i in range(600)])
    write_parquet(tmp_path / "files" / "00001.parquet", "content", [f"rust {i}" for i in range(600)])
    texts = list(Corpus([tmp_path], max_bytes=6000))
    assert any(t.startswith("rust") for t in texts) and any(t.startswith("python") for t in texts)


def test_max_bytes_cuts_at_a_character_boundary(tmp_path):
    write_parquet(tmp_path / "files" / "00000.parquet", "content", ["ab", "€€€", "never read"])
    corpus = Corpus([tmp_path], max_bytes=6)  # "ab" (2) + "€" (3) + a third of a "€"
    assert list(corpus) == ["ab", "€"]
    assert corpus.n_bytes == 5
    corpus = Corpus([tmp_path], max_bytes=5)
    assert list(corpus) == ["ab", "€"]
    with pytest.raises(UserError, match="positive"):
        Corpus([tmp_path], max_bytes=0)


def test_jsonl_and_gzip_with_column_choice(tmp_path):
    rows = [{"text": "one\r\ntwo", "meta": 1}, {"text": "three"}]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as f:
        f.write(json.dumps({"code": "x = 1", "text": "ignored"}) + "\n")
    assert list(Corpus([tmp_path / "a.jsonl"])) == ["one\r\ntwo", "three"]
    assert list(Corpus([tmp_path / "b.jsonl.gz"], column="code")) == ["x = 1"]
    assert sorted(Corpus([tmp_path])) == ["ignored", "one\r\ntwo", "three"]  # a plain folder, recursively


def test_parquet_file_with_explicit_column(tmp_path):
    write_parquet(tmp_path / "x.parquet", "body", ["fn main() {}"])
    assert list(Corpus([tmp_path / "x.parquet"], column="body")) == ["fn main() {}"]
    with pytest.raises(UserError, match="no 'text' or 'content' column"):
        list(Corpus([tmp_path / "x.parquet"]))
    with pytest.raises(UserError, match="no column 'nope'"):
        list(Corpus([tmp_path / "x.parquet"], column="nope"))


def test_bad_inputs_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        resolve_inputs([tmp_path / "missing"])
    with pytest.raises(UserError, match="no parquet or jsonl files"):
        resolve_inputs([tmp_path])
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(UserError, match="not a .parquet"):
        resolve_inputs([tmp_path / "notes.txt"])
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{oops\n')
    with pytest.raises(UserError, match=r"bad.jsonl:2: not a JSON record"):
        list(Corpus([tmp_path / "bad.jsonl"]))
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(UserError, match="cannot read parquet"):
        list(Corpus([tmp_path / "bad.parquet"]))


def test_a_dataset_with_nothing_kept_is_an_error_not_its_rejects(tmp_path):
    (tmp_path / "files").mkdir()
    write_parquet(tmp_path / "removed" / "00000.parquet", "content", ["dropped by a filter"])
    with pytest.raises(UserError, match="empty dataset"):
        resolve_inputs([tmp_path])
