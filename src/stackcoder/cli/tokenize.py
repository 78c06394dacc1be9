"""`stackcoder tokenize DATASET --tokenizer TOK`: a dataset's documents as token shards for training."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tokenize",
        help="tokenize a built dataset's documents into training shards (train/valid by repository)",
        description=(
            "Tokenize DATASET/documents (written by `stackcoder build`) into datatrove's binary token shards "
            "(.ds with .ds.index document boundaries; nanotron reads them too): OUTPUT/train and, for a "
            "held-out set of whole repositories, OUTPUT/valid. OUTPUT/tokens.json records the split."
        ),
    )
    p.add_argument("dataset", metavar="DATASET", help="a directory built by `stackcoder build`")
    p.add_argument(
        "--tokenizer", "-t", required=True, metavar="PATH", help="directory holding tokenizer.json"
    )
    p.add_argument("--output", "-o", metavar="DIR", help="default: DATASET/tokens")
    p.add_argument(
        "--valid-fraction",
        type=float,
        default=0.05,
        metavar="F",
        help="share of repositories held out for evaluation (at least one); default: %(default)s",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="which repositories are held out; default: %(default)s"
    )
    p.add_argument(
        "--workers", type=int, default=1, metavar="N", help="tasks run at once; default: %(default)s"
    )
    p.add_argument("--executor", choices=["local", "ray"], default="local", help="default: %(default)s")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty OUTPUT")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from stackcoder.data.executor import configure_logs
    from stackcoder.data.tokenize import TokenizeConfig, tokenize

    configure_logs()
    summary = tokenize(
        TokenizeConfig(
            dataset=args.dataset,
            tokenizer=args.tokenizer,
            output=args.output,
            valid_fraction=args.valid_fraction,
            seed=args.seed,
            workers=args.workers,
            executor=args.executor,
            progress=not args.no_progress and sys.stderr.isatty(),
            overwrite=args.overwrite,
        )
    )
    train, valid = summary["train"], summary["valid"]
    print(
        f"train: {train['tokens']:,} tokens in {train['documents']:,} documents; "
        f"valid: {valid['tokens']:,} tokens in {valid['documents']:,} documents "
        f"({len(summary['valid_repositories'])} held-out repositories); written to {summary['output']}"
    )
    return 0
