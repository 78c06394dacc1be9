"""`stackcoder recipe show`: print the default (The Stack v2) recipe, or a merged one."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recipe", help="show the dataset recipe (every threshold of the pipeline)")
    verbs = p.add_subparsers(dest="action", metavar="ACTION")
    verbs.required = True
    show = verbs.add_parser(
        "show",
        help="print the default recipe as TOML (with --recipe: the merged result)",
        description="Print the default The Stack v2 recipe, comments included. Save it, edit what you "
        "want to change, and pass it to `stackcoder build --recipe FILE`.",
    )
    show.add_argument("--recipe", metavar="FILE", help="an override file to merge over the default")
    show.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from stackcoder.data.recipe import default_recipe_text, dump_recipe, load_recipe

    print(default_recipe_text() if args.recipe is None else dump_recipe(load_recipe(args.recipe)), end="")
    return 0
