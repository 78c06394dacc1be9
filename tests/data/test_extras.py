"""``--text`` inputs (recipe.md §6, plain-text extras): parsing the flag, reading JSONL and Parquet."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stackcoder.data import fields as F
from stackcoder.data.extras import TextRecordReader, parse_text_input
from stackcoder.data.recipe import load_recipe
from stackcoder.errors import UserError

PAGE = (Path(__file__).parents[2] / "docs" / "dedup.md").read_text()


def test_kind_from_flag_or_file_name(tmp_path):
    path = tmp_path / "so.v1.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"text": "x"}\n'))
    assert parse_text_input(str(path)).kind == "so"
    assert parse_text_input(f"Docs.Python={path}").kind == "docs.python"
    for spec, error in [
        (f"a b={path}", "kind 'a b'"),
        (f"x={tmp_path / 'none.jsonl'}", "no such file"),
        (f"x={Path(__file__)}", "expected .jsonl"),
    ]:
        with pytest.raises(UserError, match=error):
            parse_text_input(spec)
    bad = tmp_path / "t.parquet"
    pq.write_table(pa.table({"body": ["x"]}), bad)
    with pytest.raises(UserError, match="no `text` column"):
        parse_text_input(str(bad))


def test_jsonl_gz_and_parquet_records(tmp_path):
    jsonl = tmp_path / "a.jsonl.gz"
    lines = [
        json.dumps({"id": "p1", "text": PAGE, "site": "x", "language": "Markdown"}),
        "[1]",
        json.dumps({"text": " "}),
    ]
    jsonl.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    table = tmp_path / "b.parquet"
    pq.write_table(pa.table({"text": [PAGE + "<|endoftext|>", None], "n": [1, 2]}), table, row_group_size=1)
    reader = TextRecordReader([parse_text_input(f"k={jsonl}"), parse_text_input(f"k={table}")])
    assert reader.tasks(32) == 3 and reader.tasks(2) == 2  # the JSONL file, then one task per row group
    docs = [d for rank in range(3) for d in reader.run(rank=rank, world_size=3)]
    first = docs[0].metadata
    assert (first[F.RECORD_ID], first[F.LANGUAGE], json.loads(first[F.RECORD_METADATA])) == (
        "p1",
        "Markdown",
        {"site": "x"},
    )
    assert docs[0].text == PAGE + "<|endoftext|>" and first[F.LENGTH_BYTES] == len(docs[0].text.encode())
    reasons = [(d.metadata.get(F.REMOVED_REASON), d.metadata.get(F.REMOVED_DETAIL)) for d in docs]
    assert reasons == [
        (None, None),
        ("invalid_json", "line 2: not a JSON object"),
        ("empty_text", None),
        (None, None),
        ("no_text", None),
    ]
    assert docs[3].text.count("<|endoftext|>") == 1 and docs[3].metadata[F.RECORD_ID] == "b.parquet:0.0"


def test_a_recipe_override_may_add_a_kind(tmp_path):
    override = tmp_path / "r.toml"
    override.write_text("[text.kinds.stackoverflow]\nnear_dedup = true\n")
    kinds = load_recipe(override)["text"]["kinds"]
    assert kinds["stackoverflow"] == {**load_recipe()["text"]["default"], "near_dedup": True}
    override.write_text("[text.kinds.stackoverflow]\nnear_dedupe = true\n")
    with pytest.raises(UserError, match="unknown setting 'text.kinds.stackoverflow.near_dedupe'"):
        load_recipe(override)
