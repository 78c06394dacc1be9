"""--repo-metadata: CSV or JSONL rows joined onto SOURCES by `source`, else by repo_name."""

from __future__ import annotations

import json
import logging

import pytest

from data.readers.builders import make_tar, read, write_files
from stackcoder.errors import UserError


@pytest.fixture
def repos(tmp_path):
    root = tmp_path / "repos"
    write_files(root / "flask", {"app.py": "app = 1\n"})
    write_files(root / "left", {"index.js": "1;\n"})
    make_tar(root / "requests-2.31.0.tar.gz", {"requests-2.31.0/api.py": "get = 1\n"})
    return root


def repo_fields(docs):
    keys = ("star_events_count", "fork_events_count", "gha_license_id", "revision_date")
    return {d.metadata["repo_name"]: tuple(d.metadata[k] for k in keys) for d in docs}


def test_csv_join_by_source_and_by_repo_name(tmp_path, repos, caplog):
    meta = tmp_path / "meta.csv"
    meta.write_text(
        "repo_name,source,stars,forks,license,revision_date,homepage\n"
        "pallets/flask,flask,65000,16000,BSD-3-Clause,2023-09-01T10:00:00+00:00,https://x\n"
        "psf/requests,requests-2.31.0.tar.gz,51000,9000,Apache-2.0,,\n"
        "left,,3,,,,\n"
        "nobody/else,,1,1,MIT,,\n"
    )
    with caplog.at_level(logging.WARNING):
        docs, _ = read([repos], repos_dir=True, repo_metadata=str(meta))
    assert repo_fields(docs) == {
        "pallets/flask": (65000, 16000, "BSD-3-Clause", "2023-09-01T10:00:00+00:00"),
        "psf/requests": (51000, 9000, "Apache-2.0", None),
        "left": (3, None, None, None),
    }
    assert "ignoring unknown columns: homepage" in caplog.text
    assert "1 rows match no SOURCE" in caplog.text


def test_jsonl_join_with_the_dataset_names(tmp_path, repos):
    meta = tmp_path / "meta.jsonl"
    rows = [
        {"repo_name": "pallets/flask", "source": str(repos / "flask"), "star_events_count": 10},
        {"repo_name": "requests-2.31.0", "fork_events_count": 2, "gha_license_id": "Apache-2.0"},
    ]
    meta.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    docs, _ = read([repos], repos_dir=True, repo_metadata=str(meta))
    fields = repo_fields(docs)
    assert fields["pallets/flask"] == (10, None, None, None)
    assert fields["requests-2.31.0"] == (None, 2, "Apache-2.0", None)


def test_git_commit_date_wins_over_metadata(tmp_path, git):
    git.repo(tmp_path / "r", {"a.py": "a\n"})
    meta = tmp_path / "m.jsonl"
    meta.write_text(json.dumps({"repo_name": "r", "revision_date": "2000-01-01", "stars": 5}) + "\n")
    (doc,) = read([tmp_path / "r"], repo_metadata=str(meta))[0]
    assert doc.metadata["revision_date"] == "2024-01-02T03:04:05+00:00"
    assert doc.metadata["star_events_count"] == 5


@pytest.mark.parametrize(
    "name, text, error",
    [
        ("m.csv", "repo_name,stars\nflask,many\n", r"m.csv:2: `stars` must be a count, got 'many'"),
        ("m.csv", "name,stars\nflask,1\n", r"m.csv:1: the CSV header has no `repo_name` column"),
        ("m.csv", "repo_name,stars\nflask,1\n,2\n", r"m.csv:3: no repo_name"),
        ("m.csv", "repo_name,forks\nflask,-1\n", r"m.csv:2: `forks` must be a count"),
        ("m.csv", "repo_name\nflask,extra\n", r"m.csv:2: more values than columns"),
        ("m.jsonl", '{"repo_name": "a"}\n[1, 2]\n', r"m.jsonl:2: not a JSON object"),
        ("m.jsonl", '{"repo_name": "a"}\n\n{bad\n', r"m.jsonl:3: not a JSON record"),
        ("m.jsonl", '{"repo_name": "a", "stars": true}\n', r"m.jsonl:1: `stars` must be a count"),
        (
            "m.jsonl",
            '{"repo_name": "a", "revision_date": "yesterday"}\n',
            r"m.jsonl:1: `revision_date` is not",
        ),
        ("m.txt", "repo_name\n", r"m.txt: --repo-metadata must be a .csv or .jsonl file"),
    ],
)
def test_malformed_metadata_names_file_and_line(tmp_path, repos, name, text, error):
    meta = tmp_path / name
    meta.write_text(text)
    with pytest.raises(UserError, match=error):
        read([repos], repos_dir=True, repo_metadata=str(meta))


def test_missing_metadata_file_and_ambiguous_source(tmp_path, repos):
    with pytest.raises(UserError, match="no such file"):
        read([repos], repos_dir=True, repo_metadata=str(tmp_path / "none.csv"))
    other = tmp_path / "other"
    write_files(other / "flask", {"b.py": "b\n"})
    meta = tmp_path / "m.csv"
    meta.write_text("repo_name,source\npallets/flask,flask\n")
    with pytest.raises(UserError, match=r"m.csv:2: source 'flask' matches several SOURCES"):
        read([repos / "flask", other / "flask"], repo_metadata=str(meta))
