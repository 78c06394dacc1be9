"""Load the recipe: the default The Stack v2 thresholds (recipe.toml), optionally overridden.

An override file holds only what it changes; it is merged over the default section by section.
Unknown sections or keys are an error that names them, so a typo never silently keeps a default.
"""

from __future__ import annotations

import copy
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from stackcoder.errors import UserError

DEFAULT_RECIPE = "recipe.toml"
# tables whose keys the user names (``--text KIND=FILE`` kinds): a new entry is checked against the
# table given here, and starts from its values
OPEN_TABLES = {"text.kinds": ("text", "default")}


def default_recipe_text() -> str:
    return resources.files("stackcoder.data").joinpath(DEFAULT_RECIPE).read_text(encoding="utf-8")


def _merge(
    base: dict[str, Any], override: dict[str, Any], where: str, root: dict[str, Any] | None = None
) -> dict[str, Any]:
    root = base if root is None else root
    merged = copy.deepcopy(base)
    for key, value in override.items():
        name = f"{where}.{key}" if where else key
        if key not in base and where in OPEN_TABLES and isinstance(value, dict):
            table, entry = OPEN_TABLES[where]
            merged[key] = _merge(root[table][entry], value, name, root)
            continue
        if key not in base:
            known = ", ".join(sorted(base)) or "none"
            raise UserError(f"recipe: unknown setting '{name}' (known here: {known})")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise UserError(f"recipe: '{name}' must be a table")
            merged[key] = _merge(base[key], value, name, root)
        else:
            expected = type(base[key])
            ok = isinstance(value, expected) or (expected is float and isinstance(value, int))
            if not ok or (expected is int and isinstance(value, bool)):
                raise UserError(f"recipe: '{name}' must be {expected.__name__}, got {value!r}")
            merged[key] = value
    return merged


def load_recipe(path: str | Path | None = None) -> dict[str, Any]:
    """The default recipe, with the file at ``path`` (TOML) merged over it."""
    recipe = tomllib.loads(default_recipe_text())
    if path is None:
        return recipe
    path = Path(path)
    if not path.is_file():
        raise UserError(f"recipe file not found: {path}")
    try:
        override = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"recipe file {path} is not valid TOML: {e}") from None
    recipe = _merge(recipe, override, "")
    check_ranges(recipe, path)
    return recipe


def check_ranges(recipe: dict[str, Any], path: str | Path) -> None:
    """The steps' own range checks (the MinHash parameters, the documents' split and metadata
    probability), run on the merged recipe, so that a bad value is a one-line error before a build
    writes anything, not a traceback from a step built later."""
    from stackcoder.data.dedup.minhash import MinhashConfig
    from stackcoder.data.repo_docs import check_documents

    docs = recipe["documents"]
    try:
        MinhashConfig.from_recipe(recipe["dedup"]["near"])
        check_documents(docs["metadata_probability"], docs["max_document_bytes"])
    except ValueError as e:
        raise UserError(f"recipe file {path}: {e}") from None


def dump_recipe(recipe: dict[str, Any]) -> str:
    """A merged recipe as TOML that loads back to it (`stackcoder recipe show --recipe FILE`). The
    default recipe is printed from its file instead, comments included. Written here rather than
    with a TOML writer package: the recipe holds only tables, strings, numbers, booleans and lists."""
    text = "\n".join(_dump(recipe)) + "\n"
    tomllib.loads(text)  # what we print must load back
    return text


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
