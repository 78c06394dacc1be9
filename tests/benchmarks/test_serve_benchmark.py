"""The serving benchmark runs end to end (debug model, a few requests): both servers answer, the table
prints, the JSON has the numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "benchmarks" / "bench_serve.py"


@pytest.mark.slow
def test_bench_serve_smoke(tmp_path):
    for module in ("fastapi", "uvicorn", "transformers", "httpx"):
        pytest.importorskip(module, reason=f"bench_serve.py needs {module}")
    out = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--json", str(tmp_path / "r.json")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "| clients | server | requests | errors |" in out.stdout
    assert "| 2 | naive |" in out.stdout and "| 2 | ours |" in out.stdout
    results = json.loads((tmp_path / "r.json").read_text())
    for name in ("ours", "naive"):
        for c in ("1", "2"):
            r = results["servers"][name][c]
            assert r["tokens_per_s"] > 0 and r["requests"] > 0 and r["errors"] == 0, (name, c, r)
    assert results["ratio"]["2"] > 0
