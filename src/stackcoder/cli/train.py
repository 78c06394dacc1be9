"""`stackcoder train --config FILE --output DIR`: train a StarCoder2 model on token shards."""

from __future__ import annotations

import argparse
import sys

from stackcoder.cli.run_flags import add_slurm_flags, slurm_options
from stackcoder.train.slurm import TrainJob

# flag -> (section, field): what changes per invocation; everything else lives in the config file
OVERRIDES = {
    "data": ("data", "path"),
    "tokenizer": ("data", "tokenizer"),
    "seq_len": ("data", "seq_len"),
    "size": ("model", "size"),
    "init_from": ("model", "init_from"),
    "max_steps": ("training", "max_steps"),
    "global_batch": ("training", "global_batch"),
    "micro_batch": ("training", "micro_batch"),
    "device": ("training", "device"),
    "parallel": ("training", "parallel"),
    "seed": ("training", "seed"),
    "lr": ("optimizer", "lr"),
    "warmup_steps": ("optimizer", "warmup_steps"),
    "eval_every": ("eval", "every"),
    "save_every": ("checkpoint", "every"),
    "log_every": ("log", "every"),
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    from stackcoder.train.presets import PRESETS

    p = sub.add_parser(
        "train",
        help="train a StarCoder2 model on token shards (FIM, packing, checkpoints, DDP/FSDP)",
        description=(
            "Train on the shards of `stackcoder tokenize`: repository documents with file-level FIM, packed "
            "rows with document masking, AdamW with warmup and cosine decay. Writes DIR/config.json, "
            "DIR/metrics.jsonl, DIR/loss.png, DIR/checkpoints/step-N (Hugging Face layout plus optimizer and "
            "loader state) and DIR/model (the final weights). Rerunning the same command resumes from the "
            "newest checkpoint with the same losses as an uninterrupted run. Under torchrun "
            "(`torchrun --nproc-per-node N -m stackcoder train ...`) it trains data-parallel; with "
            "--slurm-nodes N the same command is submitted to Slurm as DIR/slurm/train.sbatch (srun "
            "torchrun on N nodes), which resumes when submitted again."
        ),
        epilog=f"presets: {', '.join(PRESETS)} (stackcoder.train.presets; a config file's `preset =`)",
    )
    p.add_argument(
        "--config", "-c", metavar="FILE", help="TOML: `preset = NAME` and [model] [data] [optimizer] ..."
    )
    p.add_argument(
        "--preset", metavar="NAME", help="start from this preset (default: the file's, else cpu_tiny)"
    )
    p.add_argument("--output", "-o", required=True, metavar="DIR", help="run directory")
    p.add_argument(
        "--data", metavar="DIR", help="token shards (`stackcoder tokenize` output) or the dataset dir"
    )
    p.add_argument("--tokenizer", metavar="DIR", help="default: the tokenizer the shards were made with")
    p.add_argument("--seq-len", type=int, metavar="N", help="tokens per row")
    p.add_argument("--size", metavar="NAME", help="model size (debug, tiny, small, medium, 1b, 3b, 7b, 15b)")
    p.add_argument(
        "--init-from", metavar="DIR", help="start from these weights (HF layout), e.g. a first stage"
    )
    p.add_argument("--max-steps", type=int, metavar="N")
    p.add_argument(
        "--global-batch", type=int, metavar="ROWS", help="rows per optimizer step, all ranks together"
    )
    p.add_argument("--micro-batch", type=int, metavar="ROWS", help="rows per forward pass per rank")
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--warmup-steps", type=int, metavar="N")
    p.add_argument("--device", metavar="DEV", help="auto (default), cpu, cuda")
    p.add_argument("--parallel", choices=["ddp", "fsdp"], help="data parallelism under torchrun")
    p.add_argument("--seed", type=int)
    p.add_argument("--eval-every", type=int, metavar="STEPS")
    p.add_argument("--save-every", type=int, metavar="STEPS")
    p.add_argument("--log-every", type=int, metavar="STEPS")
    p.add_argument("--overwrite", action="store_true", help="discard a run with other settings in DIR")
    p.add_argument(
        "--print-config", action="store_true", help="print the resolved config as TOML-able JSON and exit"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    g = p.add_argument_group("on Slurm (docs/training.md, docs/scaling.md)")
    g.add_argument(
        "--slurm-nodes",
        type=int,
        metavar="N",
        help="submit this run to Slurm on N nodes (one torchrun per node) instead of training here",
    )
    g.add_argument(
        "--gpus-per-node",
        type=int,
        default=TrainJob.gpus_per_node,
        metavar="G",
        help="default: %(default)s (CPU)",
    )
    g.add_argument(
        "--nproc-per-node", type=int, metavar="P", help="processes per node; default: one per GPU, else one"
    )
    add_slurm_flags(g, TrainJob(1).options, "each node (one srun task per node)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from stackcoder.train.config import apply
    from stackcoder.train.presets import load_config

    cfg = load_config(args.config, args.preset)
    values: dict[str, dict] = {}
    for flag, (section, name) in OVERRIDES.items():
        value = getattr(args, flag)
        if value is not None:
            values.setdefault(section, {})[name] = value
    cfg = apply(cfg, values, "command line")
    if args.print_config:
        print(json.dumps(cfg.to_dict(), indent=2))
        return 0
    if args.slurm_nodes is not None:
        return run_on_slurm(args)
    from stackcoder.train.trainer import train

    result = train(
        cfg, args.output, progress=not args.no_progress and sys.stderr.isatty(), overwrite=args.overwrite
    )
    if result.loss is not None:
        held_out = f", held-out loss {result.eval_loss:.4f}" if result.eval_loss is not None else ""
        print(f"done: step {result.step}, loss {result.loss:.4f}{held_out}")
    print(f"model: {result.model_dir}  (stackcoder generate --model {result.model_dir} 'def fib(n):')")
    print(f"metrics: {result.output / 'metrics.jsonl'}, loss curve: {result.output / 'loss.png'}")
    return 0


def run_on_slurm(args: argparse.Namespace) -> int:
    """Submit the same command (less the Slurm flags) as an sbatch script; follow it with --wait."""
    from pathlib import Path

    from stackcoder.train import slurm

    job = TrainJob(
        nodes=args.slurm_nodes,
        gpus_per_node=args.gpus_per_node,
        nproc_per_node=args.nproc_per_node,
        cpus_per_node=args.cpus_per_task,
        options=slurm_options(args),
    )
    train_args = ["--output", args.output]
    for flag in ("config", "preset", *OVERRIDES):
        if (value := getattr(args, flag)) is not None:
            train_args += [f"--{flag.replace('_', '-')}", str(value)]
    if args.overwrite:  # the trainer's rule: only a run with other settings is discarded
        train_args.append("--overwrite")
    output = Path(args.output)
    job_id, new = slurm.submit(job, train_args, output)
    log = slurm.log_of(output, job_id, job.options.logs)
    what = "submitted" if new else "already queued (nothing submitted)"
    print(f"training job {job_id} {what}: {output / slurm.SLURM_DIR / slurm.SCRIPT}; log: {log}")
    if job.options.wait:
        text = slurm.wait(output, job_id, job.options.logs)
        done = [line for line in text.splitlines() if line.startswith(("done:", "model:"))]
        print("\n".join(done[-2:]) or f"job {job_id} finished")
    return 0
