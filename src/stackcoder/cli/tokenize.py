"""`stackcoder tokenize DATASET --tokenizer TOK`: a dataset's documents, and its other sources (the
mix: ``--source``, ``--epochs``/``--weight``, ``--fim``), as token shards for training."""

from __future__ import annotations

import argparse

from stackcoder.cli.run_flags import add_run_flags, run_options
from stackcoder.data.options import TokenizeConfig


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tokenize",
        help="tokenize a built dataset's documents and parts into training shards (train/valid by repo)",
        description=(
            "Tokenize DATASET/documents (written by `stackcoder build`) and every other source the dataset "
            "has (jupyter_scripts, jupyter_structured, issues, pull_requests, text/KIND) into datatrove's "
            "binary token shards (.ds with .ds.index document boundaries; nanotron reads them too): "
            "OUTPUT/train and, for a held-out set of whole repositories (the same in every source), "
            "OUTPUT/valid; with more than one source, one folder per source in each. OUTPUT/tokens.json "
            "records the split and the mix: per source its documents and tokens, epochs or weight, the "
            "probability that the trainer draws its next document from it, and its FIM mode. Without "
            "--epochs or --weight every source counts 1 epoch: each is drawn in proportion to its size "
            "(docs/training.md)."
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
        default=TokenizeConfig.valid_fraction,
        metavar="F",
        help="share of repositories held out for evaluation (at least one); default: %(default)s",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=TokenizeConfig.seed,
        help="which repositories are held out; default: %(default)s",
    )
    g = p.add_argument_group("the mix (several sources; docs/training.md)")
    g.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="NAME[=PATH]",
        help="a source to tokenize (repeatable; given, only those listed): NAME alone is DATASET/NAME "
        "(documents, issues, text/docs, ...), NAME=PATH a folder of Parquet files with a text column "
        "(or another built dataset: its documents); default: DATASET's documents and every part with records",
    )
    g.add_argument(
        "--epochs",
        action="append",
        default=[],
        metavar="NAME=E",
        help="relative epochs of a source (repeatable; default 1 each): E=3 sees its tokens 3 times "
        "as often as a source with 1; StarCoder2 trained at most ~5 epochs",
    )
    g.add_argument(
        "--weight",
        action="append",
        default=[],
        metavar="NAME=W",
        help="instead of --epochs: the weight of drawing the next document from NAME (normalised over "
        "the sources; every source needs one; 0 tokenizes a source without training on it)",
    )
    g.add_argument(
        "--fim",
        action="append",
        default=[],
        metavar="NAME=MODE",
        help="how FIM applies to a source's documents: repository (per file, documents' default), "
        "document (the whole text as one file, jupyter_scripts' default) or none (everything else)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a finished OUTPUT (one cut short with the same settings resumes without it)",
    )
    add_run_flags(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from stackcoder.data.executor import configure_logs
    from stackcoder.data.mix import parse_fim, parse_numbers
    from stackcoder.data.tokenize import tokenize

    configure_logs()
    summary = tokenize(
        TokenizeConfig(
            dataset=args.dataset,
            tokenizer=args.tokenizer,
            output=args.output,
            valid_fraction=args.valid_fraction,
            seed=args.seed,
            overwrite=args.overwrite,
            run=run_options(args),
            sources=args.source,
            epochs=parse_numbers(args.epochs, "--epochs"),
            weights=parse_numbers(args.weight, "--weight"),
            fim=parse_fim(args.fim),
        )
    )
    if summary.get("submitted"):
        out = summary["output"]
        print(f"submitted to Slurm; follow it with: stackcoder status {out} --wait  (logs: {out}/logs)")
        return 0
    train, valid = summary["train"], summary["valid"]
    print(
        f"train: {train['tokens']:,} tokens in {train['documents']:,} documents; "
        f"valid: {valid['tokens']:,} tokens in {valid['documents']:,} documents "
        f"({len(summary['valid_repositories'])} held-out repositories); written to {summary['output']}"
    )
    if len(summary["sources"]) > 1:
        for s in summary["sources"]:
            mix = f"{s['epochs']:g} epochs" if summary["mix"] == "epochs" else f"weight {s['weight']:g}"
            train = s["train"]
            print(
                f"  {s['name']:<20} {train['tokens']:>14,} train tokens {train['documents']:>9,} docs"
                f"  {100 * s['token_share']:5.1f}% of training tokens  ({mix}, P {s['probability']:.4f}, "
                f"FIM {s['fim']})"
            )
    return 0
