"""The dedup passes end to end: the same removals and the same bytes whatever the number of
buckets, of workers or the executor (golden test), and a killed task rerun writes the same files."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from data.dedup.helpers import final_pass, recipe, removed, row, run_passes, write_shards
from stackcoder.atomic import temporary_name
from stackcoder.data import fields as F
from stackcoder.data.dedup import Pass, dedup_passes, dedup_stats

pytest.importorskip("rensa", reason="rensa is not installed")

SHARDS = 4


def forked(text: str) -> str:
    """A comment line every 20 lines (Jaccard 0.84-0.89 with the original for these files)."""
    lines = text.splitlines(keepends=True)
    for i in range(len(lines) - 1, 0, -20):
        lines.insert(i, f"# forked here, line {i}\n")
    return "".join(lines)


def corpus() -> list[list[dict]]:
    """Real standard-library files, exact copies, edited copies and other languages over 4 shards
    (shard 2 empty: a task that kept nothing)."""
    stdlib = Path(textwrap.__file__).parent
    names = ["textwrap.py", "difflib.py", "shlex.py", "fnmatch.py", "glob.py", "bisect.py", "heapq.py"]
    real = {name: (stdlib / name).read_text() for name in names}
    lines = real["difflib.py"].splitlines(keepends=True)
    files = []
    for i, (name, text) in enumerate(real.items()):
        files.append(row(text, f"cpython/r{i}", name, **{F.STARS: 10 * i}))
        files.append(row(text, f"mirror/r{i}", name, **{F.STARS: 5, F.LICENSE_TYPE: F.NO_LICENSE}))
        files.append(row(forked(text), f"fork/r{i}", name))
        files.append(row(text.replace("def ", "def  "), f"spaced/r{i}", name, language="Text"))
    files.append(row("".join(lines[300:1500]), "part/a", "a.py", **{F.REVISION_DATE: "2024-01-01"}))
    files.append(row("".join(lines[420:1620]), "part/b", "b.py", **{F.REVISION_DATE: "2023-01-01"}))
    files.append(row("x = 1\n", "tiny/a"))
    files.append(row("x = 1\n", "tiny/b"))
    shards: list[list[dict]] = [[] for _ in range(SHARDS)]
    for i, f in enumerate(files):
        shards[[0, 1, 3][i % 3]].append(f)
    return shards


def dedup_bytes(work: Path) -> dict[str, bytes]:
    """Every output file whose name does not depend on the number of buckets."""
    root = work / "dedup"
    keep = [*root.glob("near/removals/*.parquet"), root / "near/stats.json", *root.glob("near/signatures/*")]
    return {str(p.relative_to(root)): p.read_bytes() for p in keep}


def outcome(work: Path, buckets: int) -> tuple:
    files = final_pass(work, SHARDS, buckets)
    return removed(files), dedup_stats(work), dedup_bytes(work)


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    work = tmp_path_factory.mktemp("golden")
    write_shards(work, corpus())
    run_passes(work, SHARDS, 1)
    return outcome(work, 1)


def test_the_golden_run_removes_what_it_should(golden):
    got, stats, _ = golden
    reasons = {k[0].split("/")[0]: v[:2] for k, v in got.items()}
    assert reasons["mirror"] == ("exact_dedup", "exact_duplicate")
    assert reasons["fork"] == ("near_dedup", "near_duplicate")
    assert "spaced" not in reasons  # Text: another language; its copies differ only in spaces
    assert got[("part/b", "b.py")] == ("near_dedup", "near_duplicate", "part/a/a.py")  # later revision wins
    assert got[("tiny/b", "src/main.py")][:2] == ("exact_dedup", "exact_duplicate")
    assert stats["exact"]["removed"] == 7 + 1 and stats["near"]["removed"] == 7 + 1


@pytest.mark.parametrize("buckets", [4, 7])
def test_same_output_with_any_number_of_buckets(tmp_path, golden, buckets):
    write_shards(tmp_path, corpus())
    run_passes(tmp_path, SHARDS, buckets)
    assert outcome(tmp_path, buckets) == golden


@pytest.mark.parametrize("workers", [1, 2])
def test_same_output_on_the_local_executor(tmp_path, golden, workers):
    write_shards(tmp_path, corpus())
    run_passes(tmp_path, SHARDS, 3, workers=workers)
    assert outcome(tmp_path, 3) == golden


@pytest.mark.slow
def test_same_output_on_the_ray_executor(tmp_path, golden):
    pytest.importorskip("ray", reason="Ray is not installed")
    import ray

    from stackcoder.data.executor import RunOptions, run_steps

    write_shards(tmp_path, corpus())
    try:
        for p in dedup_passes(tmp_path, SHARDS, 2, recipe()):
            logs = tmp_path / "logs" / p.name
            options = RunOptions(executor="ray", workers=2, progress=False)
            run_steps(p.steps, tasks=p.tasks, logging_dir=logs, options=options)
    finally:
        ray.shutdown()
    assert outcome(tmp_path, 2) == golden


# which files each pass's task writes (task number in {t})
OUTPUTS = {
    "exact_records": ["exact/records/*/{t:05d}.parquet"],
    "exact_buckets": ["exact/removals/*/{t:05d}.parquet", "exact/stats/{t:05d}.json"],
    "near_signatures": ["near/bands/*/{t:05d}.bin", "near/signatures/{t:05d}.*"],
    "near_buckets": ["near/pairs/{t:05d}.*"],
    "near_clusters": ["near/removals/*.parquet", "near/stats.json"],
}


def all_bytes(work: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(work)): p.read_bytes() for p in sorted((work / "dedup").rglob("*")) if p.is_file()
    }


def test_a_killed_task_rerun_writes_the_same_files(tmp_path):
    write_shards(tmp_path, corpus())
    buckets = 3
    run_passes(tmp_path, SHARDS, buckets)
    before = all_bytes(tmp_path)
    passes: list[Pass] = dedup_passes(tmp_path, SHARDS, buckets, recipe())
    assert [p.name for p in passes] == list(OUTPUTS)
    for p in passes:
        task = min(1, p.tasks - 1)
        written = sorted(
            f for pattern in OUTPUTS[p.name] for f in (tmp_path / "dedup").glob(pattern.format(t=task))
        )
        assert written, p.name
        # what kill -9 can leave: a stray temporary file, and (from an older run) a stale or missing file
        temporary_name(written[0]).write_bytes(b"half a file")
        written[0].write_bytes(written[0].read_bytes()[: written[0].stat().st_size // 2])
        written[-1].unlink()
        for step in p.steps:
            step.run(None, task, p.tasks)
        assert all_bytes(tmp_path) == before, p.name
        assert not list((tmp_path / "dedup").rglob(".*.tmp"))


def test_a_missing_input_is_an_error_not_an_empty_result(tmp_path):
    write_shards(tmp_path, corpus())
    exact_records, exact_buckets, *_ = dedup_passes(tmp_path, SHARDS, 2, recipe())
    exact_records.steps[0].run(None, 0, SHARDS)  # shards 1-3 never ran
    with pytest.raises(FileNotFoundError, match="did not finish"):
        exact_buckets.steps[0].run(None, 0, 2)


def test_stats_are_json_for_the_card(golden):
    _, stats, files = golden
    assert json.loads(files["near/stats.json"]) == stats["near"]
    near = stats["near"]
    assert near["config"] == {
        "ngram": 5,
        "num_perm": 250,
        "bands": 25,
        "rows": 10,
        "threshold": 0.7,
        "seed": 1,
        "verify": True,
    }
    assert sum(near["cluster_sizes"].values()) == near["clusters"]
    assert near["files"] == near["signed"] + near["skipped_short"] + near["skipped_exact_duplicate"]
