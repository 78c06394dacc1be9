"""`stackcoder finetune --model BASE --data DATASET --output RUN`: LoRA / QLoRA fine-tuning of a StarCoder2
checkpoint on your own repositories; `stackcoder finetune merge`: an adapter merged into a full checkpoint."""

from __future__ import annotations

import argparse
import sys

from stackcoder.cli.train import OVERRIDES as TRAIN_OVERRIDES
from stackcoder.errors import UserError

# the train flags that apply here (flag -> (section, field)), and the LoRA ones
OVERRIDES = {
    flag: where
    for flag, where in TRAIN_OVERRIDES.items()
    if flag not in ("data", "size", "init_from", "parallel")
} | {
    "lora_r": ("lora", "r"),
    "lora_alpha": ("lora", "alpha"),
    "lora_dropout": ("lora", "dropout"),
    "lora_targets": ("lora", "targets"),
    "base_dtype": ("lora", "base_dtype"),
    "quantize": ("lora", "quantize"),
    "gradient_checkpointing": ("lora", "gradient_checkpointing"),
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune",
        help="LoRA / QLoRA fine-tuning of a StarCoder2 checkpoint on your repositories (PEFT adapters)",
        description=(
            "Adapt BASE (any Hugging Face-layout StarCoder2 checkpoint, released or ours) to DATASET (a "
            "`stackcoder build` output, or its token shards; tokenized with BASE's tokenizer when needed) "
            "with LoRA adapters, in StarCoder2's training format: repository documents, file-level FIM, "
            "packed rows with document masking, held-out repositories for evaluation. The loop is "
            "`stackcoder train`'s: the same metrics (RUN/metrics.jsonl), progress, checkpoints (the adapter "
            "plus optimizer and loader state; rerunning resumes exactly) and DDP under torchrun. Writes "
            "RUN/adapter in PEFT's format (transformers + peft and vLLM load it; generate, serve and eval "
            "take --adapter RUN/adapter) and, with --merge, RUN/model, a full checkpoint. "
            "`stackcoder finetune merge --model BASE --adapter DIR --output OUT` merges an adapter later."
        ),
    )
    p.add_argument("--model", "-m", metavar="BASE", help="the base checkpoint directory (HF layout)")
    p.add_argument("--data", metavar="DATASET", help="a `stackcoder build` output, or its token shards")
    p.add_argument("--output", "-o", metavar="RUN", help="run directory")
    p.add_argument("--config", "-c", metavar="FILE", help="TOML: [lora] [data] [optimizer] [training] ...")
    g = p.add_argument_group("LoRA")
    g.add_argument("--lora-r", type=int, metavar="R", help="adapter rank (default 16)")
    g.add_argument("--lora-alpha", type=float, metavar="A", help="the update is scaled by A/R (default 32)")
    g.add_argument("--lora-dropout", type=float, metavar="P", help="dropout on the adapters' input (0.05)")
    g.add_argument(
        "--lora-targets",
        type=lambda s: [t.strip() for t in s.split(",") if t.strip()],
        metavar="NAMES",
        help="comma-separated linear layers to adapt (default: all six of every block, "
        "q_proj,k_proj,v_proj,o_proj,c_fc,c_proj); a name matching no layer is an error",
    )
    g.add_argument(
        "--base-dtype",
        choices=["bfloat16", "float32"],
        help="the frozen base's weights (default bfloat16; adapters and optimizer are float32)",
    )
    g.add_argument(
        "--quantize",
        choices=["int8", "int4", "nf4"],
        help="a quantized frozen base (QLoRA): int8/int4 with PyTorch's weight-only kernels (CPU or "
        "CUDA), nf4 through bitsandbytes (CUDA only; untested here, docs/finetune.md)",
    )
    g.add_argument(
        "--gradient-checkpointing",
        action="store_const",
        const=True,
        help="recompute each block's activations in backward: much less memory, ~1/3 more compute",
    )
    g.add_argument(
        "--merge", action="store_true", help="also write RUN/model: the base with the update merged"
    )
    t = p.add_argument_group("the training loop (as `stackcoder train`)")
    t.add_argument("--tokenizer", metavar="DIR", help="default: the base's tokenizer.json")
    t.add_argument("--seq-len", type=int, metavar="N", help="tokens per row (default 1024)")
    t.add_argument("--max-steps", type=int, metavar="N", help="default 1000")
    t.add_argument("--global-batch", type=int, metavar="ROWS", help="rows per optimizer step (default 8)")
    t.add_argument("--micro-batch", type=int, metavar="ROWS", help="rows per forward pass per rank (2)")
    t.add_argument("--lr", type=float, help="peak learning rate (default 2e-4)")
    t.add_argument("--warmup-steps", type=int, metavar="N")
    t.add_argument("--device", metavar="DEV", help="auto (default), cpu, cuda")
    t.add_argument("--seed", type=int)
    t.add_argument("--eval-every", type=int, metavar="STEPS")
    t.add_argument("--save-every", type=int, metavar="STEPS")
    t.add_argument("--log-every", type=int, metavar="STEPS")
    t.add_argument(
        "--valid-fraction",
        type=float,
        default=0.05,
        metavar="F",
        help="held-out repositories when DATASET is tokenized here (default %(default)s, at least one)",
    )
    t.add_argument("--overwrite", action="store_true", help="discard a run with other settings in RUN")
    t.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    t.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    p.set_defaults(run=run)

    sub_merge = p.add_subparsers(dest="action", metavar="merge")
    m = sub_merge.add_parser(
        "merge",
        help="write BASE with an adapter merged in as a full checkpoint",
        description="A full Hugging Face-layout checkpoint: BASE's weights plus the LoRA update of --adapter "
        "(and BASE's tokenizer), which transformers, vLLM and `stackcoder generate/serve` load as any "
        "StarCoder2.",
    )
    m.add_argument("--model", "-m", required=True, metavar="BASE", help="the base the adapter was trained on")
    m.add_argument("--adapter", required=True, metavar="DIR", help="a PEFT LoRA adapter (RUN/adapter)")
    m.add_argument("--output", "-o", required=True, metavar="OUT", help="where the checkpoint goes")
    m.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="default: as BASE stores it")
    m.set_defaults(run=run_merge)


def run(args: argparse.Namespace) -> int:
    import json

    from stackcoder.train.config import apply
    from stackcoder.train.finetune import finetune, load_finetune_config

    cfg = load_finetune_config(args.config)
    values: dict[str, dict] = {}
    for flag, (section, name) in OVERRIDES.items():
        value = getattr(args, flag)
        if value is not None:
            values.setdefault(section, {})[name] = value
    cfg = apply(cfg, values, "command line")
    if args.print_config:
        print(json.dumps(cfg.to_dict(), indent=2))
        return 0
    missing = [f"--{name}" for name in ("model", "data", "output") if getattr(args, name) is None]
    if missing:
        raise UserError(f"finetune needs {' '.join(missing)} (stackcoder finetune --help)")
    result, merged = finetune(
        cfg,
        args.model,
        args.data,
        args.output,
        merge=args.merge,
        valid_fraction=args.valid_fraction,
        progress=not args.no_progress and sys.stderr.isatty(),
        overwrite=args.overwrite,
    )
    if result.loss is not None:
        held_out = f", held-out loss {result.eval_loss:.4f}" if result.eval_loss is not None else ""
        print(f"done: step {result.step}, loss {result.loss:.4f}{held_out}")
    print(
        f"adapter: {result.model_dir}  (stackcoder generate --model {args.model} --adapter "
        f"{result.model_dir} 'def ')"
    )
    if merged is not None:
        print(f"merged checkpoint: {merged}")
    print(f"metrics: {result.output / 'metrics.jsonl'}, loss curve: {result.output / 'loss.png'}")
    return 0


def run_merge(args: argparse.Namespace) -> int:
    from stackcoder.model.hf import DTYPES
    from stackcoder.model.lora import merge_checkpoint

    out = merge_checkpoint(args.model, args.adapter, args.output, dtype=DTYPES.get(args.dtype))
    print(f"merged checkpoint: {out}")
    return 0
