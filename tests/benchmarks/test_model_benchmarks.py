"""The model benchmark scripts run (tiny sizes) and say clearly when they cannot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")

BENCH = Path(__file__).parents[2] / "benchmarks"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_bench_model_smoke(tmp_path):
    out = run(str(BENCH / "bench_model.py"), "--smoke", "--threads", "1", "--json", str(tmp_path / "r.json"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "| train fwd+bwd | debug @ 64 |" in out.stdout and "same tokens" in out.stdout
    results = json.loads((tmp_path / "r.json").read_text())
    for impl in ("ours", "transformers"):
        assert results["train"]["debug:64"][impl]["tokens_per_s"] > 0
        assert results["train"]["debug:64"][impl]["train_mib"] > 0
        assert results["generate"]["debug:16:8:2"][impl]["tokens_per_s"] > 0


@pytest.mark.slow
def test_gpu_mfu_smoke_and_cpu_refusal():
    out = run(str(BENCH / "gpu_mfu.py"), "--smoke")
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["impl"] for r in lines] == ["stackcoder", "transformers"]
    assert all(r["tokens_per_s"] > 0 and r["steps"] >= 2 for r in lines)
    if not torch.cuda.is_available():
        out = run(str(BENCH / "gpu_mfu.py"))
        assert out.returncode == 2 and "no CUDA GPU" in out.stderr and out.stdout == ""


@pytest.mark.slow
def test_bench_released_smoke(tmp_path):
    """A one-layer `tiny` checkpoint written tensor by tensor, every mode measured, the report printed."""
    out = run(
        str(BENCH / "bench_released.py"),
        *("--size", "tiny", "--layers", "1", "--new-tokens", "4", "--threads", "1"),
        *("--prompt-tokens", "64", "--bandwidth-mib", "256"),
        *("--checkpoint-dir", str(tmp_path / "ckpt"), "--json", str(tmp_path / "r.json")),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads((tmp_path / "r.json").read_text())["released"]
    assert set(r["runs"]) == {"ours bf16", "ours int8", "ours int4", "transformers"}
    for name, m in r["runs"].items():
        assert m["decode_tokens_per_s"] > 0 and m["ttft_s"] > 0 and m["peak_rss"] > 0, name
    assert r["runs"]["ours bf16"]["tokens"] == r["runs"]["transformers"]["tokens"]
    # what a token reads falls with the mode (loaded bytes need not: tiny's embeddings dominate, and a
    # quantized tied model adds an int8 lm_head to them)
    read = [r["runs"][f"ours {m}"]["bytes_per_token"] for m in ("bf16", "int8", "int4")]
    assert read == sorted(read, reverse=True) and read[0] > read[1]
    assert "| ours int4 |" in out.stdout and "Greedy bf16 vs transformers: identical" in out.stdout
    assert r["shards"] == 1 and r["stored"] == "float32"
    spm = r["prefix_cache"]["ttft"]["spm"]  # the prefix cache measured on the same checkpoint
    assert 0 < spm["prefilled_after_edit"] < spm["prompt_tokens"] // 4 and spm["ratio"] > 0
