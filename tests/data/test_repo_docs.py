"""Repository-context documents (recipe.md §2): the exact format, the seeded order, metadata draws,
splitting at file boundaries, removed files, repository boundaries, output files and token ids."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from helpers import make_file
from stackcoder.data import fields as F
from stackcoder.data.repo_docs import DOCUMENTS_SCHEMA, RepositoryDocuments, summarize_documents
from stackcoder.data.step import mark_removed

FIXTURES = Path(__file__).parents[1] / "fixtures"

THREE = {
    "setup.py": "from setuptools import setup\n\nsetup(name='demo')\n",
    "demo/__init__.py": "from demo.core import add\n",
    "demo/core.py": "def add(a, b):\n    return a + b\n",
}


def three_file_repo() -> list:
    return [
        make_file(code, path, repo_name="octo/demo", language="Python", license_type=F.PERMISSIVE)
        for path, code in THREE.items()
    ]


def jsonify_files(repo_name: str = "substack/jsonify") -> list:
    """The 7 files of a real npm package, as the reader would yield them."""
    docs = []
    with tarfile.open(FIXTURES / "repos" / "jsonify-0.0.0.tgz") as tar:
        for m in tar.getmembers():
            text = tar.extractfile(m).read().decode("utf-8")
            language = {"js": "JavaScript", "json": "JSON", "markdown": "Markdown"}[m.name.rsplit(".", 1)[1]]
            path = m.name.removeprefix("package/")
            docs.append(make_file(text, path, repo_name, language=language, license_type=F.NO_LICENSE))
    return docs


def run(docs: list, root: Path, rank: int = 0, **kwargs) -> list[dict]:
    step = RepositoryDocuments(str(root), **kwargs)
    out = list(step.run(iter(docs), rank=rank))
    assert out == docs  # every file passes through, in order
    return pq.read_table(root / "documents" / f"{rank:05d}.parquet").to_pylist()


def test_exact_format_with_metadata(tmp_path):
    [row] = run(three_file_repo(), tmp_path, metadata_probability=1.0)
    # the seeded order for seed 0 (pinned: it must never change between runs or versions)
    assert row["paths"] == ["setup.py", "demo/core.py", "demo/__init__.py"]
    expected = (
        "<repo_name>octo/demo"
        "<file_sep>setup.py\nfrom setuptools import setup\n\nsetup(name='demo')\n"
        "<file_sep>demo/core.py\ndef add(a, b):\n    return a + b\n"
        "<file_sep>demo/__init__.py\nfrom demo.core import add\n"
        "<|endoftext|>"
    )
    assert row["text"] == expected
    assert row | {"text": None} == {
        "repo_name": "octo/demo",
        "part": 0,
        "n_parts": 1,
        "text": None,
        "has_metadata": True,
        "n_files": 3,
        "paths": ["setup.py", "demo/core.py", "demo/__init__.py"],
        "languages": ["Python"],
        "license_type": "permissive",
    }


def test_exact_format_without_metadata(tmp_path):
    [row] = run(three_file_repo(), tmp_path, metadata_probability=0.0)
    expected = (
        "<file_sep>from setuptools import setup\n\nsetup(name='demo')\n"
        "<file_sep>def add(a, b):\n    return a + b\n"
        "<file_sep>from demo.core import add\n"
        "<|endoftext|>"
    )
    assert row["text"] == expected and row["has_metadata"] is False
    assert row["paths"] == ["setup.py", "demo/core.py", "demo/__init__.py"]  # same order either way


def test_order_is_a_seeded_permutation_independent_of_input_order(tmp_path):
    files = jsonify_files()
    paths = [f.metadata[F.PATH] for f in files]
    [a] = run(files, tmp_path / "a")
    [b] = run(files[::-1], tmp_path / "b")
    [c] = run(files, tmp_path / "c", seed=7)
    assert sorted(a["paths"]) == sorted(paths) and len(a["paths"]) == 7
    assert a["paths"] != paths and a["paths"] != sorted(paths)
    assert b["text"] == a["text"]  # the reader's order does not matter
    assert c["paths"] != a["paths"]  # another seed, another order
    # removing a file leaves the others in the same relative order
    [d] = run([f for f in files if f.metadata[F.PATH] != "lib/parse.js"], tmp_path / "d")
    assert d["paths"] == [p for p in a["paths"] if p != "lib/parse.js"]


SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[2])
from helpers import make_file
from stackcoder.data.repo_docs import RepositoryDocuments
docs = [make_file(f"x = {i}\\n", f"m{i}.py", repo_name=f"o/r{i % 5}") for i in range(40)]
docs.sort(key=lambda d: d.metadata["repo_name"])
step = RepositoryDocuments(sys.argv[1])
list(step.run(iter(docs)))
"""


def test_output_is_identical_across_processes(tmp_path):
    outputs = []
    for hash_seed in ("1", "2"):
        root = tmp_path / hash_seed
        env = os.environ | {"PYTHONHASHSEED": hash_seed}  # salts str hash(): must not matter
        subprocess.run(
            [sys.executable, "-c", SCRIPT, str(root), str(Path(__file__).parents[1])], env=env, check=True
        )
        outputs.append((root / "documents" / "00000.parquet").read_bytes())
    assert outputs[0] == outputs[1]
    rows = pq.read_table(tmp_path / "1" / "documents" / "00000.parquet").to_pylist()
    assert [r["repo_name"] for r in rows] == [f"o/r{i}" for i in range(5)]
    assert all(r["n_files"] == 8 for r in rows)


def test_metadata_is_drawn_with_the_configured_probability(tmp_path):
    docs = [make_file(f"print({i})\n", "main.py", repo_name=f"owner/repo{i:04d}") for i in range(2000)]
    rows = run(docs, tmp_path, metadata_probability=0.5)
    with_meta = [r for r in rows if r["has_metadata"]]
    assert 900 < len(with_meta) < 1100  # binomial(2000, 0.5): sd 22; the draw is deterministic
    assert all(
        r["text"].startswith("<repo_name>" + r["repo_name"] + "<file_sep>main.py\n") for r in with_meta
    )
    assert all(r["text"].startswith("<file_sep>print(") for r in rows if not r["has_metadata"])
    rows_03 = run(docs, tmp_path / "p03", metadata_probability=0.3)
    assert 500 < sum(r["has_metadata"] for r in rows_03) < 700


def test_large_repositories_split_at_file_boundaries(tmp_path):
    files = jsonify_files()
    sizes = {f.metadata[F.PATH]: len(f.text.encode()) for f in files}  # largest: lib/parse.js 6,845
    [whole] = run(files, tmp_path / "whole", metadata_probability=1.0)
    parts = run(files, tmp_path / "split", metadata_probability=1.0, max_document_bytes=6000)
    assert len(parts) >= 3
    assert [p["part"] for p in parts] == list(range(len(parts)))
    assert {p["n_parts"] for p in parts} == {len(parts)}
    # the parts are the whole document's files, in the same order, cut between files
    assert [path for p in parts for path in p["paths"]] == whole["paths"]
    for p in parts:
        content = sum(sizes[path] for path in p["paths"])
        assert content <= 6000 or p["paths"] == ["lib/parse.js"]  # a larger file is a part of its own
        assert p["text"].startswith("<repo_name>substack/jsonify<file_sep>") and p["text"].endswith(
            "<|endoftext|>"
        )
        assert p["text"].count("<file_sep>") == p["n_files"]
    # a greedy cut: the next part's first file would not have fit
    for p, nxt in zip(parts, parts[1:], strict=False):
        assert sum(sizes[x] for x in p["paths"]) + sizes[nxt["paths"][0]] > 6000
    # every part draws its own metadata
    mixed = run(files, tmp_path / "mixed", metadata_probability=0.5, max_document_bytes=1000)
    assert len({p["has_metadata"] for p in mixed}) == 2


def test_removed_files_are_excluded_and_passed_through(tmp_path):
    files = three_file_repo()
    mark_removed(files[2], "near_dedup", "near_duplicate")
    docs = files + [make_file("SECRET = 1\n", "x.py", repo_name="other/repo")]
    mark_removed(docs[-1], "malware", "clamav")
    rows = run(docs, tmp_path, metadata_probability=1.0)
    assert [r["repo_name"] for r in rows] == ["octo/demo"]  # a repository with no live file has no document
    assert sorted(rows[0]["paths"]) == ["demo/__init__.py", "setup.py"]
    assert "return a + b" not in rows[0]["text"] and "SECRET" not in rows[0]["text"]
    assert run(docs[-1:], tmp_path / "none", rank=2) == []  # a task with nothing live writes an empty shard


def test_repository_boundaries_and_labels(tmp_path):
    a = three_file_repo()
    b = jsonify_files()
    mark_removed(b[0], "pii", "x")  # a removed file of b between the two: still one boundary
    rows = run(a + b, tmp_path, metadata_probability=1.0)
    assert [(r["repo_name"], r["n_files"]) for r in rows] == [("octo/demo", 3), ("substack/jsonify", 6)]
    assert rows[1]["languages"] == ["JSON", "JavaScript", "Markdown"]
    assert "octo/demo" not in rows[1]["text"] and "jsonify" not in rows[0]["text"]
    # a repository's label is its most restrictive file's class; unknown classes give no label
    mixed = three_file_repo()
    mixed[1].metadata[F.LICENSE_TYPE] = F.NO_LICENSE
    unknown = jsonify_files("o/unknown")
    unknown[3].metadata[F.LICENSE_TYPE] = None
    rows = run(mixed + unknown, tmp_path / "labels")
    assert [r["license_type"] for r in rows] == [F.NO_LICENSE, None]


def test_two_sources_with_one_repository_name_are_two_repositories(tmp_path):
    old = jsonify_files("jsonify")
    new = jsonify_files("jsonify")
    for f in new:
        f.metadata[F.SOURCE] = "jsonify-0.0.1.tgz"
    rows = run(old + new, tmp_path)
    assert [(r["repo_name"], r["n_files"]) for r in rows] == [("jsonify", 7), ("jsonify", 7)]


def test_a_repository_split_across_the_stream_is_an_error(tmp_path):
    a, b = three_file_repo(), jsonify_files()
    with pytest.raises(ValueError, match="not contiguous"):
        list(RepositoryDocuments(str(tmp_path)).run(iter(a[:1] + b + a[1:])))
    assert not list((tmp_path / "documents").iterdir())  # nothing half-written


def test_output_does_not_depend_on_task_layout(tmp_path):
    repos = [jsonify_files(f"owner/pkg{i}") for i in range(4)]
    one = run([f for r in repos for f in r], tmp_path / "one")
    two = run([f for r in repos[:2] for f in r], tmp_path / "two", rank=0)
    two += run([f for r in repos[2:] for f in r], tmp_path / "two", rank=1)
    assert one == two
    assert sorted(p.name for p in (tmp_path / "two" / "documents").iterdir()) == [
        "00000.parquet",
        "00001.parquet",
    ]


def test_shard_is_complete_or_absent_and_rerun_overwrites(tmp_path):
    files = jsonify_files()
    run(files, tmp_path)
    first = (tmp_path / "documents" / "00000.parquet").read_bytes()
    assert pq.read_schema(tmp_path / "documents" / "00000.parquet").equals(DOCUMENTS_SCHEMA)

    def dies():
        yield from files[:3]
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        list(RepositoryDocuments(str(tmp_path / "x")).run(dies()))
    assert list((tmp_path / "x" / "documents").iterdir()) == []
    # a task killed with kill -9 leaves its temporary file; the rerun replaces both
    (tmp_path / "documents" / ".00000.parquet.tmp").write_bytes(b"partial")
    run(files, tmp_path)
    assert [p.name for p in (tmp_path / "documents").iterdir()] == ["00000.parquet"]
    assert (tmp_path / "documents" / "00000.parquet").read_bytes() == first


def test_summary_and_step_stats(tmp_path):
    docs = three_file_repo() + jsonify_files()
    step = RepositoryDocuments(str(tmp_path), metadata_probability=0.5, max_document_bytes=3000)
    list(step.run(iter(docs)))
    rows = pq.read_table(tmp_path / "documents" / "00000.parquet").to_pylist()
    summary = summarize_documents(tmp_path)
    assert summary == {
        "documents": 2,
        "parts": len(rows),
        "split_documents": 1,
        "files": 10,
        "bytes": sum(len(r["text"].encode()) for r in rows),
        "with_metadata": sum(r["has_metadata"] for r in rows),
        "without_metadata": sum(not r["has_metadata"] for r in rows),
    }
    counters = {k: v.total for k, v in step.stats.stats.items()}
    assert counters["documents"] == 2 and counters["parts"] == len(rows) and counters["files"] == 10
    assert counters["bytes"] == summary["bytes"]


def test_special_tokens_get_their_ids(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    from stackcoder.tokenizer.files import decode, encode

    tok = tokenizers.Tokenizer.from_file(str(FIXTURES / "model" / "tokenizer.json"))
    repo_id, sep_id, eos_id = (tok.token_to_id(t) for t in ("<repo_name>", "<file_sep>", "<|endoftext|>"))
    assert (repo_id, sep_id, eos_id) == (5, 6, 0)  # StarCoder2's vocabulary order (recipe.md §2)
    with_meta, without = (
        run(three_file_repo(), tmp_path / "a", metadata_probability=1.0),
        run(three_file_repo(), tmp_path / "b", metadata_probability=0.0),
    )
    for [row] in (with_meta, without):
        ids = encode(tok, row["text"])
        seps = [i for i, t in enumerate(ids) if t == sep_id]
        assert len(seps) == 3 and ids[-1] == eos_id and eos_id not in ids[:-1]
        assert (ids[0] == repo_id) == row["has_metadata"] and ids.count(repo_id) == row["has_metadata"]
        if row["has_metadata"]:
            assert decode(tok, ids[1 : seps[0]]) == "octo/demo"
        chunks = [decode(tok, ids[s + 1 : e]) for s, e in zip(seps, seps[1:] + [len(ids) - 1], strict=True)]
        for path, chunk in zip(row["paths"], chunks, strict=True):
            assert chunk == (f"{path}\n{THREE[path]}" if row["has_metadata"] else THREE[path])


def test_step_pickles_and_the_card_module_loads_no_plotting_library(tmp_path):
    import pickle

    step = pickle.loads(pickle.dumps(RepositoryDocuments(str(tmp_path), seed=3)))
    assert (step.seed, step.max_document_bytes) == (3, 50_000_000)
    code = "import sys, stackcoder.data.card, stackcoder.data.repo_docs; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # executors fork workers: heavy libraries load on first use
