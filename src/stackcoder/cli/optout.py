"""`stackcoder optout add|list`: keep the opt-out list that `stackcoder build --opt-out FILE` reads
(the list file's rules: ``data/optout.py``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from stackcoder.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("optout", help="add to or show the opt-out list (repositories never included)")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    file_help = "the list (default: $STACKCODER_OPTOUT, else ./optout.txt; data/optout.py:default_file)"
    add = actions.add_parser(
        "add",
        help="add owners or owner/repo patterns",
        description="Add owners (every repository of theirs) or owner/repo patterns, fnmatch globs "
        "allowed. The file is rewritten sorted and without duplicates; names are lower-cased, since "
        "they match case-insensitively. Full-line comments are kept at the top.",
    )
    add.add_argument(
        "patterns", nargs="+", metavar="PATTERN", help="'octocat', 'octocat/hello-world', 'octo*'"
    )
    add.add_argument("--file", type=Path, metavar="FILE", help=file_help)
    add.set_defaults(run=run_add)
    show = actions.add_parser("list", help="print the patterns of the list, one per line")
    show.add_argument("--file", type=Path, metavar="FILE", help=file_help)
    show.set_defaults(run=run_list)


def run_add(args: argparse.Namespace) -> int:
    from stackcoder.data.optout import add_patterns, default_file

    path = args.file or default_file()
    added, total = add_patterns(path, args.patterns)
    print(f"{path}: {added} added, {total} patterns")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from stackcoder.data.optout import default_file, load_optout, merge_optout

    path = args.file or default_file()
    if not path.is_file():
        raise UserError(f"no opt-out list at {path} (create one with `stackcoder optout add PATTERN`)")
    for pattern in merge_optout(load_optout(path)):
        print(pattern)
    return 0
