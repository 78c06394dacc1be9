#!/usr/bin/env python
"""License class accuracy on the demo corpus against the packages' declared licenses (recipe.md §1.2).

Every demo repository is read from the demo cache as ``stackcoder build --repos-dir`` reads it
(``RepositoryReader``) and labeled by ``LicenseDetector`` with the recipe's ``[license]`` settings.
The reference class of a package comes from the SPDX expression it declares (``license`` in
``data/demo/manifest.toml``), judged independently of the code under test: a license is permissive
when ``licenses/permissive.json`` says so, ``OR`` needs one permissive alternative, ``AND`` needs all,
``WITH`` is judged by its license. Reported: repositories whose root files all get the declared
class, files (every live non-license file) that get it, and the misses with the ids found.

A package that ships no license file is ``no_license`` by the recipe's rule whatever it declares,
so those count as misses here on purpose: the figure is agreement with the declared licenses.

    stackcoder demo download                              # the corpus, into the default cache
    python benchmarks/bench_license_demo.py               # table + JSON summary on the last line
    python benchmarks/bench_license_demo.py --cache DIR --recipe FILE
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path


def declared_class(expression: str) -> str:
    """The class a declared SPDX expression implies (the oracle: it does not use ``classify``)."""
    from license_expression import LicenseWithExceptionSymbol, Licensing

    from stackcoder.data import fields as F
    from stackcoder.data.license import license_roles

    roles = license_roles()
    if expression.strip().lower() == "public domain":  # npm's free text; ScanCode's public-domain key
        expression = "LicenseRef-scancode-public-domain"
    parsed = Licensing().parse(expression)

    def permissive(node) -> bool:
        if isinstance(node, LicenseWithExceptionSymbol):
            node = node.license_symbol
        if hasattr(node, "key"):
            return roles.get(node.key.lower()) == "permissive"
        results = [permissive(arg) for arg in node.args]
        return any(results) if node.__class__.__name__ == "OR" else all(results)

    return F.PERMISSIVE if permissive(parsed) else F.NON_PERMISSIVE


def label_repository(path: Path, detector_kwargs: dict) -> list[dict]:
    """(path, class, detected_licenses) of every live file of the repository at ``path``."""
    from stackcoder.data import fields as F
    from stackcoder.data.license import LicenseDetector
    from stackcoder.data.readers.reader import RepositoryReader
    from stackcoder.data.readers.sources import resolve_source
    from stackcoder.data.step import is_removed

    source = resolve_source(str(path), str(path), "auto", 8_000_000_000, 2_000_000)
    docs = LicenseDetector(**detector_kwargs).run(RepositoryReader([source]).run())
    return [
        {
            "path": d.metadata[F.PATH],
            "class": d.metadata[F.LICENSE_TYPE],
            "licenses": list(d.metadata[F.DETECTED_LICENSES]),
        }
        for d in docs
        if not is_removed(d)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=None, help="the demo cache (default: ~/.cache/...)")
    parser.add_argument("--recipe", default=None, help="a recipe override file ([license] settings)")
    args = parser.parse_args()

    from stackcoder.data.demo.manifest import default_cache, load_manifest
    from stackcoder.data.license_files import is_license_file
    from stackcoder.data.recipe import load_recipe

    cache = args.cache or default_cache()
    settings = {k: v for k, v in load_recipe(args.recipe)["license"].items() if k != "keep_classes"}
    repos_ok = files_ok = files_total = 0
    misses, seen = [], Counter()
    start = time.perf_counter()
    manifest = load_manifest()
    for pkg in manifest:
        entry = cache / "repos" / pkg.source
        if not entry.exists():
            raise SystemExit(f"{entry} is missing: run `stackcoder demo download` first")
        truth = declared_class(pkg.license)
        code = [f for f in label_repository(entry, settings) if not is_license_file(f["path"])]
        root = [f for f in code if "/" not in f["path"]] or code
        root_classes = Counter(f["class"] for f in root)
        ok = set(root_classes) == {truth}
        repos_ok += ok
        correct = sum(f["class"] == truth for f in code)
        files_ok += correct
        files_total += len(code)
        seen.update(f["class"] for f in code)
        got = "/".join(sorted(root_classes))
        licenses = sorted({lic for f in root for lic in f["licenses"]})
        print(
            f"{'ok  ' if ok else 'MISS'} {pkg.name:42} {pkg.license:46} {truth:15} {got:27} "
            f"{correct:4}/{len(code):<4} {licenses}"
        )
        if not ok:
            misses.append(pkg.name)
    summary = {
        "repositories": len(manifest),
        "repositories_correct": repos_ok,
        "repository_accuracy": round(repos_ok / len(manifest), 3),
        "files": files_total,
        "files_correct": files_ok,
        "file_accuracy": round(files_ok / files_total, 3),
        "file_classes": dict(seen),
        "misses": misses,
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
