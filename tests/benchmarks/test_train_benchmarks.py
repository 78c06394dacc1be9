"""The training benchmark scripts run (tiny sizes) and report what they promise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "benchmarks"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_bench_train_smoke(tokens, tmp_path):
    pytest.importorskip("transformers")
    out = run(
        str(BENCH / "bench_train.py"),
        "--smoke",
        "--data",
        str(tokens),
        "--work",
        str(tmp_path),
        "--json",
        str(tmp_path / "r.json"),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "| train step, debug@64" in out.stdout and "FIM transform" in out.stdout
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["train"]["debug@64"]["stackcoder"]["tokens_per_s"] > 0 and r["train"]["debug@64"]["ratio"] > 0
    assert set(r["loader"]) == {
        "stackcoder + FIM",
        "stackcoder, no FIM",
        "datatrove DatatroveFolderDataset (nanotron)",
    }
    assert r["fim"]["fim_mb_per_s"] > 0


@pytest.mark.slow
def test_gpu_train_smoke_and_cpu_refusal(tmp_path):
    out = run(str(BENCH / "gpu_train.py"), "smoke")
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["steps"] == 4 and r["tokens_per_s"] > 0 and r["prepared"]["documents"] >= 4
    if not __import__("torch").cuda.is_available():
        refused = run(str(BENCH / "gpu_train.py"), "train", "--data", str(tmp_path))
        assert refused.returncode != 0 and "no CUDA device" in refused.stderr
