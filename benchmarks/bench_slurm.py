#!/usr/bin/env python
"""The data verbs on Slurm vs the local executor (issue 18): wall time of every pass of ``stackcoder
build``, ``tokenize`` and ``index build`` on the demo corpus, so the difference is what Slurm costs
per pass (scheduling a dependent job array, starting a fresh process per task that loads the steps,
ScanCode's license index included, and the finish job).

Needs a Slurm cluster (``sudo scripts/slurm-cluster.sh start`` makes a one-node one) and the demo
corpus (``stackcoder demo download``). Each command runs in a subprocess, locally with
``--workers`` processes and on Slurm with ``--executor slurm --wait`` (as many tasks at once as
the cluster has CPUs), once per ``--tasks-per-job`` K (K tasks per array element, in one process).
A pass's time is from the end of the pass before it (or the command's start) to its last
completion marker; "finish" is the rest of the command (stats and card, ``tokens.json``,
``index.json``).

    python benchmarks/bench_slurm.py                     # the demo corpus, the build's default tasks
    python benchmarks/bench_slurm.py --tasks 8 --workers 2 --tasks-per-job 1 4
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pass_ends(logs: Path) -> dict[str, float]:
    """When each pass under ``logs`` finished: its newest completion marker."""
    ends = {}
    for d in logs.iterdir():
        marks = list((d / "completions").glob("*")) if d.is_dir() else []
        if marks:
            ends[d.name] = max(m.stat().st_mtime for m in marks)
    return dict(sorted(ends.items(), key=lambda kv: kv[1]))


def timed(cmd: list[str], logs: Path) -> tuple[float, dict[str, float]]:
    start = time.time()
    subprocess.run([sys.executable, "-m", "stackcoder", *cmd, "-q"], check=True, stdout=subprocess.DEVNULL)
    end = time.time()
    passes, last = {}, start
    for name, t in pass_ends(logs).items():
        if name != "finish":
            passes[name] = t - last
            last = t
    passes["finish"] = end - last
    return end - start, passes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path.home() / ".cache" / "stackcoder" / "demo")
    parser.add_argument(
        "--tasks", type=int, help="build tasks (default: the build's, one per source up to 32)"
    )
    parser.add_argument("--workers", type=int, default=2, help="local processes; default: %(default)s")
    parser.add_argument(
        "--tasks-per-job", type=int, nargs="+", default=[1, 16], metavar="K", help="Slurm runs; default: 1 16"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from stackcoder.slurm import available

    if reason := available():
        sys.exit(f"bench_slurm: {reason}")
    tok = ROOT / "tests" / "fixtures" / "model"  # a real BPE tokenizer with StarCoder2's special tokens
    runs = {"local": ["--executor", "local", "--workers", str(args.workers)]}
    for k in args.tasks_per_job:
        runs[f"Slurm, K={k}"] = ["--executor", "slurm", "--wait", "--tasks-per-job", str(k)]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, run) in enumerate(runs.items()):
            out = Path(tmp) / str(i)
            build = ["build", "--repos-dir", str(args.corpus / "repos"), "-o", str(out)]
            build += ["--repo-metadata", str(args.corpus / "repo_metadata.jsonl")]
            build += ["--tasks", str(args.tasks)] if args.tasks else []
            results[label] = {
                "build": timed([*build, *run], out / "logs"),
                "tokenize": timed(["tokenize", str(out), "-t", str(tok), *run], out / "tokens" / "logs"),
                "index build": timed(
                    ["index", "build", str(out), "-o", str(out / "index"), *run], out / "index" / "logs"
                ),
            }
            stats = json.loads((out / "stats.json").read_text())
    seen, tasks = stats["totals"]["files_seen"], stats["tasks"]
    print(
        f"demo corpus: {seen:,} files, {tasks} build tasks; local --workers {args.workers}; K --tasks-per-job"
    )
    print("\n| verb | pass | " + " | ".join(f"{label} s" for label in runs) + " |")
    print("|---|---|" + "---|" * len(runs))
    for verb in ("build", "tokenize", "index build"):
        names = list(results["local"][verb][1])
        for name in names:
            cells = [f"{results[label][verb][1].get(name, float('nan')):.1f}" for label in runs]
            print(f"| {verb} | {name} | " + " | ".join(cells) + " |")
        print(
            f"| {verb} | **all** | "
            + " | ".join(f"**{results[label][verb][0]:.1f}**" for label in runs)
            + " |"
        )


if __name__ == "__main__":
    main()
