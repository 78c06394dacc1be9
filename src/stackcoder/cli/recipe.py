"""`stackcoder recipe show`: print the default (The Stack v2) recipe, or a merged one."""

from __future__ import annotations

import argparse
import tomllib

from stackcoder.data.recipe import default_recipe_text, load_recipe


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


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return "'" + v + "'" if "'" not in v else repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


def _dump(table: dict, prefix: str = "") -> list[str]:
    lines = [f"{k} = {_toml_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    for k, v in table.items():
        if isinstance(v, dict):
            name = f"{prefix}{k}"
            scalars = [x for x in v.values() if not isinstance(x, dict)]
            if scalars:
                lines += ["", f"[{name}]"]
            lines += [line for line in _dump(v, f"{name}.") if line or scalars]
    return lines


def run(args: argparse.Namespace) -> int:
    if args.recipe is None:
        print(default_recipe_text(), end="")
    else:
        text = "\n".join(_dump(load_recipe(args.recipe))) + "\n"
        tomllib.loads(text)  # what we print must load back
        print(text, end="")
    return 0
