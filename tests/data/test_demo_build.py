"""The whole demo corpus (50 real packages) through `stackcoder build`: slow end-to-end tests.

They need the corpus: it is downloaded into the default cache (``$STACKCODER_CACHE`` or
``~/.cache/stackcoder/demo``) with the ordinary package clients, and the tests skip with the reason
when that is impossible (no network to the registries).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from stackcoder.data import fields as F
from stackcoder.data.build import BuildConfig, build
from stackcoder.data.demo.manifest import load_manifest
from stackcoder.data.executor import RunOptions

pytestmark = pytest.mark.slow
pytest.importorskip("licensedcode", reason="scancode-toolkit is not installed")


@pytest.fixture(scope="module")
def corpus(demo_corpus) -> Path:
    return demo_corpus


def demo_args(cache: Path) -> list[str]:
    return ["--repos-dir", str(cache / "repos"), "--repo-metadata", str(cache / "repo_metadata.jsonl")]


def demo_config(cache: Path, output: Path, **kwargs) -> BuildConfig:
    return BuildConfig(
        sources=[str(cache / "repos")],
        repos_dir=True,
        repo_metadata=str(cache / "repo_metadata.jsonl"),
        output=output,
        run=RunOptions(progress=False, **kwargs),
    )


@pytest.fixture(scope="module")
def demo_build(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    return build(demo_config(corpus, out, workers=2))


def rows(folder: Path) -> list[dict]:
    return [r for p in sorted(folder.glob("*.parquet")) for r in pq.read_table(p).to_pylist()]


def parquet_bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.glob("*/*.parquet"))}


def count_files(entry: Path) -> int:
    if entry.is_dir():
        return sum(p.is_file() or p.is_symlink() for p in entry.rglob("*"))
    if entry.suffix == ".zip":
        return sum(not i.is_dir() for i in zipfile.ZipFile(entry).infolist())
    with tarfile.open(entry) as tar:
        return sum(not m.isdir() for m in tar.getmembers())


def test_license_classes_and_languages_match_the_manifest(demo_build):
    out = demo_build.output
    every = rows(out / "files") + rows(out / "removed")
    root_class: dict[str, set] = {}
    languages: dict[str, set] = {}
    for r in every:
        if r[F.LICENSE_TYPE] and "/" not in r[F.PATH]:
            root_class.setdefault(r[F.REPO_NAME], set()).add(r[F.LICENSE_TYPE])
        if r[F.LANGUAGE]:
            languages.setdefault(r[F.REPO_NAME], set()).add(r[F.LANGUAGE])
    wrong = []
    for p in load_manifest():
        if root_class.get(p.repo_name) != {p.expect_license_class}:
            wrong.append((p.repo_name, p.expect_license_class, root_class.get(p.repo_name)))
        if not set(p.languages) <= languages.get(p.repo_name, set()):
            wrong.append((p.repo_name, p.languages, languages.get(p.repo_name)))
    assert wrong == []
    kept_classes = {r[F.LICENSE_TYPE] for r in rows(out / "files")}
    assert kept_classes == {F.PERMISSIVE, F.NO_LICENSE}


def test_every_file_of_every_source_is_accounted_for(demo_build, corpus):
    by_source = {s["source"]: s for s in demo_build.stats["sources"]}
    expected = {p.source: count_files(corpus / "repos" / p.source) for p in load_manifest()}
    got = {Path(k).name: v["files_seen"] for k, v in by_source.items()}
    assert got == expected
    for s in by_source.values():
        assert s["files_seen"] == s["files_kept"] + s["files_removed"]
    t = demo_build.stats["totals"]
    assert t["files_seen"] == sum(expected.values())


def _start_and_kill(cmd: list[str], ready) -> None:
    """Start the build, wait until ``ready()`` says it is mid-way, then kill -9 its process group."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.05)
    assert proc.poll() is None, f"the build ended before it could be killed: {proc.stderr.read()}"
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process group: the CLI and its workers
    proc.wait()


def test_killed_build_resumes_to_the_same_output(demo_build, corpus, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "stackcoder", "build", *demo_args(corpus), "-o", str(out), "-w", "2", "-q"]
    filtered = out / "logs" / "filter" / "completions"

    def done(folder: Path) -> int:
        return len(list(folder.iterdir())) if folder.is_dir() else 0

    # killed in the first pass, with some of its tasks complete...
    _start_and_kill(cmd, lambda: done(filtered) >= 3)
    assert 3 <= done(filtered) < demo_build.stats["tasks"]
    # ...then, resumed, killed again in a later pass (dedup or final)
    _start_and_kill(cmd, lambda: (out / "logs" / "near_signatures").is_dir())
    assert done(filtered) == demo_build.stats["tasks"] and not (out / "stats.json").exists()

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr
    assert parquet_bytes(out) == parquet_bytes(demo_build.output)
    assert set(parquet_bytes(out)) >= {"documents/00000.parquet", "files/00000.parquet"}


def test_same_output_with_one_worker_two_workers_and_ray(corpus, tmp_path):
    """Dedup-free part 1 is a pure function of the sources: the engine must not change a byte."""
    chosen = [str(corpus / "repos" / p.source) for p in load_manifest()[::6]]  # 9 of the 50, all kinds

    def run(name: str, **kwargs):
        config = BuildConfig(
            sources=chosen,
            repo_metadata=str(corpus / "repo_metadata.jsonl"),
            output=tmp_path / name,
            tasks=4,
            run=RunOptions(progress=False, **kwargs),
        )
        return build(config)

    one = run("one", workers=1)
    two = run("two", workers=2)
    assert parquet_bytes(one.output) and parquet_bytes(two.output) == parquet_bytes(one.output)
    pytest.importorskip("ray", reason="Ray is not installed")
    import ray

    try:
        on_ray = run("ray", workers=2, executor="ray")
    finally:
        ray.shutdown()
    assert parquet_bytes(on_ray.output) == parquet_bytes(one.output)
    strip = [{k: v for k, v in s.items() if k != "time_s"} for s in one.stats["stages"]]
    assert [{k: v for k, v in s.items() if k != "time_s"} for s in on_ray.stats["stages"]] == strip
