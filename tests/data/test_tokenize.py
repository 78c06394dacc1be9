"""`stackcoder tokenize`: split by whole repository, counts that add up, clear errors on bad input."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from stackcoder.cli import main


def test_tokenize_splits_by_repository(dataset, tokenizer_dir, tmp_path, capsys):
    out = tmp_path / "tokens"
    args = ["tokenize", str(dataset), "-t", str(tokenizer_dir), "-o", str(out), "--valid-fraction", "0.3"]
    assert main(args) == 0
    assert "held-out repositories" in capsys.readouterr().out
    info = json.loads((out / "tokens.json").read_text())
    rows = [r for f in (dataset / "documents").glob("*.parquet") for r in pq.read_table(f).to_pylist()]
    valid = [r for r in rows if r["repo_name"] in info["valid_repositories"]]
    assert valid and info["valid"]["documents"] == len(valid)  # every part of a held-out repository
    assert info["train"]["documents"] + info["valid"]["documents"] == len(rows)
    assert main(args) == 2  # a non-empty output is not overwritten without --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0


def test_tokenize_errors(tmp_path, tokenizer_dir, capsys):
    assert main(["tokenize", str(tmp_path), "-t", str(tokenizer_dir)]) == 2
    assert "no documents" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["tokenize", "--help"])
    assert "--valid-fraction" in capsys.readouterr().out
