import pyarrow.parquet as pq
import pytest

from helpers import make_file
from stackcoder.data import fields as F
from stackcoder.data.report import format_summary, summarize
from stackcoder.data.step import mark_removed
from stackcoder.data.writer import FILES_SCHEMA, REMOVED_SCHEMA, DatasetWriter


def writer(root) -> DatasetWriter:
    return DatasetWriter(str(root / "files"), str(root / "removed"))


def _docs():
    a = make_file(
        "print('a')\n",
        "a.py",
        language="Python",
        license_type="permissive",
        detected_licenses=["MIT"],
        blob_id="1" * 40,
    )
    b = make_file("x" * 50, "b.py", language="Python", license_type="permissive")
    mark_removed(b, "long_lines", "avg_line_length")
    c = make_file("", "c.bin", src_encoding=None, length_bytes=7)
    mark_removed(c, "ingest", "binary")
    d = make_file("GPL code", "d.c", repo_name="other/repo", language="C", license_type="non_permissive")
    mark_removed(d, "license_filter", "non_permissive")
    e = make_file(
        "int main;",
        "e.c",
        repo_name="other/repo",
        language="C",
        license_type="no_license",
        star_events_count="12",
    )
    return [a, b, c, d, e]


def test_writer_splits_kept_and_removed(tmp_path):
    out = list(writer(tmp_path).run(iter(_docs()), rank=3))
    assert len(out) == 5
    files = pq.read_table(tmp_path / "files" / "00003.parquet")
    removed = pq.read_table(tmp_path / "removed" / "00003.parquet")
    assert files.schema.equals(FILES_SCHEMA) and removed.schema.equals(REMOVED_SCHEMA)
    assert files.column(F.PATH).to_pylist() == ["a.py", "e.c"]
    assert files.column(F.DETECTED_LICENSES).to_pylist() == [["MIT"], None]
    assert files.column(F.STARS).to_pylist() == [None, 12]
    rows = {r[F.PATH]: r for r in removed.to_pylist()}
    assert rows["c.bin"][F.CONTENT] is None  # a skipped binary keeps no content
    assert rows["b.py"][F.CONTENT] == "x" * 50  # a filtered file keeps its content for inspection
    assert (rows["d.c"][F.REMOVED_STAGE], rows["d.c"][F.REMOVED_REASON]) == (
        "license_filter",
        "non_permissive",
    )


def test_summary_funnel_adds_up(tmp_path):
    list(writer(tmp_path).run(iter(_docs()), rank=0))
    stages = ["ingest", "language", "license", "license_filter", "long_lines"]
    stats = summarize(tmp_path, stages)
    assert stats["totals"]["files_seen"] == 5 and stats["totals"]["files_kept"] == 2
    funnel = {s["stage"]: s for s in stats["stages"]}
    assert funnel["ingest"]["files_in"] == 5 and funnel["ingest"]["files_out"] == 4
    assert funnel["ingest"]["removed"] == {"binary": {"files": 1, "bytes": 7}}
    assert funnel["language"]["files_out"] == 4
    assert funnel["license_filter"]["files_out"] == 3
    assert funnel["long_lines"]["files_out"] == 2 == stats["totals"]["files_kept"]
    for prev, nxt in zip(stats["stages"], stats["stages"][1:], strict=False):
        assert prev["files_out"] == nxt["files_in"] and prev["bytes_out"] == nxt["bytes_in"]
    by_source = {s["source"]: s for s in stats["sources"]}
    assert by_source["test"]["files_seen"] == 5
    assert stats["languages"] == {"Python": {"files": 1, "bytes": 11}, "C": {"files": 1, "bytes": 9}}
    assert stats["license_types"] == {"permissive": 1, "no_license": 1}
    table = format_summary(stats)
    assert "long_lines" in table and "avg_line_length 1" in table and "kept 2 of 5 files" in table


def test_summary_rejects_unknown_stage(tmp_path):
    list(writer(tmp_path).run(iter(_docs()), rank=0))
    with pytest.raises(ValueError, match="license_filter"):
        summarize(tmp_path, ["ingest", "long_lines"])


def test_opted_out_files_are_written_nowhere(tmp_path):
    docs = _docs()
    gone = make_file("secret sauce", "private.py", repo_name="optout/repo")
    mark_removed(gone, "opt_out", "opted_out")
    step = DatasetWriter(str(tmp_path / "kept"), str(tmp_path / "gone"), removed_prefix="final")
    assert len(list(step.run(iter([*docs, gone]), rank=1))) == 6
    assert {p.name for p in (tmp_path / "gone").iterdir()} == {"final-00001.parquet"}
    for folder in ("kept", "gone"):
        for path in (tmp_path / folder).iterdir():
            table = pq.read_table(path)
            assert "optout/repo" not in table.column(F.REPO_NAME).to_pylist()
            assert "secret sauce" not in (table.column(F.CONTENT).to_pylist())
    assert step.stats["opted_out_not_written"].total == 1
