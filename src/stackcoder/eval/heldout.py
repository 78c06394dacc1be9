"""The held-out repositories of a built dataset: the ones `stackcoder tokenize` kept out of training
(``tokens.json``'s ``valid_repositories``), with their files from ``DATASET/files``."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq

from stackcoder.errors import UserError

COLUMNS = ["repo_name", "path", "content", "language"]


def heldout_files(dataset: str | Path) -> dict[str, list[dict]]:
    """{repo_name: [file rows]} for the held-out repositories, in path order."""
    root = Path(dataset)
    info_file = next(
        (p for p in (root / "tokens" / "tokens.json", root / "tokens.json") if p.is_file()), None
    )
    if info_file is None:
        raise UserError(
            f"{root}: no tokens/tokens.json; run `stackcoder tokenize {root} --tokenizer TOK` first"
        )
    repos = set(json.loads(info_file.read_text())["valid_repositories"])
    if not repos:
        raise UserError(f"{info_file}: no held-out repositories (tokenize with --valid-fraction > 0)")
    files_dir = root / "files"
    if not any(files_dir.glob("*.parquet")):
        raise UserError(f"{files_dir}: no files (*.parquet): give the directory `stackcoder build` wrote")
    out: dict[str, list[dict]] = defaultdict(list)
    for f in sorted(files_dir.glob("*.parquet")):
        for row in pq.read_table(f, columns=COLUMNS).to_pylist():
            if row["repo_name"] in repos and row["content"]:
                out[row["repo_name"]].append(row)
    return {r: sorted(rows, key=lambda x: x["path"]) for r, rows in sorted(out.items())}
