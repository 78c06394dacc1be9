"""`stackcoder optout add|list`: keep the opt-out list that `stackcoder build --opt-out FILE` reads."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from stackcoder.errors import UserError

ENV = "STACKCODER_OPTOUT"
DEFAULT_FILE = "optout.txt"
HEADER = "# stackcoder opt-out list: one owner or owner/repo per line (globs allowed), see docs/optout.md"


def default_file() -> Path:
    """``$STACKCODER_OPTOUT`` if set, else ``optout.txt`` in the current directory."""
    return Path(os.environ.get(ENV) or DEFAULT_FILE)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("optout", help="add to or show the opt-out list (repositories never included)")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    file_help = f"the list (default: ${ENV}, else ./{DEFAULT_FILE})"
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
    from stackcoder.data.optout import check_pattern, merge_optout, parse_optout

    path = args.file or default_file()
    new = [check_pattern(p, "optout add") for p in args.patterns]
    comments: list[str] = []
    old: list[str] = []
    if path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"opt-out list {path}: cannot read it: {e}") from None
        old = parse_optout(text, str(path))
        comments = [line.rstrip() for line in text.splitlines() if line.lstrip().startswith("#")]
    merged = merge_optout(old, new)
    added = len(merged) - len(merge_optout(old))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join([*(comments or [HEADER]), *merged]) + "\n", encoding="utf-8")
    tmp.replace(path)  # never a half-written list
    print(f"{path}: {added} added, {len(merged)} patterns")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from stackcoder.data.optout import load_optout, merge_optout

    path = args.file or default_file()
    if not path.is_file():
        raise UserError(f"no opt-out list at {path} (create one with `stackcoder optout add PATTERN`)")
    for pattern in merge_optout(load_optout(path)):
        print(pattern)
    return 0
