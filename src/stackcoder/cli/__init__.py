"""`stackcoder <verb>`: one module per verb, each with ``add_parser`` and ``run``.

A verb parses flags, builds a config and calls one function of the package that shares its name
(``build`` -> ``stackcoder.data.build.build``). A ``UserError`` becomes one line on stderr and
exit status 2, without a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from stackcoder import __version__
from stackcoder.errors import UserError

# module name under stackcoder.cli, in --help order
VERBS = [
    "build",
    "recipe",
    "tokenizer",
    "tokenize",
    "train",
    "finetune",
    "generate",
    "serve",
    "eval",
    "index",
    "status",
    "demo",
    "optout",
]


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stackcoder",
        description="The Stack v2 pipeline and StarCoder2 models: from repositories to a code LLM.",
    )
    parser.add_argument("--version", action="version", version=f"stackcoder {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for verb in VERBS:
        module = importlib.import_module(f"stackcoder.cli.{verb}")
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except UserError as e:
        print(f"stackcoder {args.verb}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"stackcoder {args.verb}: interrupted", file=sys.stderr)
        return 130
