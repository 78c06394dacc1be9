#!/usr/bin/env python
"""Regenerate src/stackcoder/data/licenses/permissive.json, the pinned license classes (recipe.md §1.2).

Permissive = ScanCode's categories "Permissive" and "Public Domain" (the YAML front matter of the
installed ``licensedcode/data/licenses/*.LICENSE``) + every license of the Blue Oak Council list (npm
package ``@blueoak/list``, all ratings: the list *is* the council's list of permissive licenses, the
rating only grades their drafting). The same file pins the two other roles the classifier needs:
``amendments`` (CLAs, DCO, patent grants, trademark/warranty/export notices, bare exceptions: ignored)
and ``unknown`` (ScanCode's ``is_unknown`` keys: dropped next to a permissive license).

    python scripts/make_permissive_list.py                       # runs `npm pack @blueoak/list`
    python scripts/make_permissive_list.py --blueoak blueoak-list-15.0.0.tgz

Every ScanCode key is written under its SPDX id; keys without one get ``LicenseRef-scancode-<key>``,
the id ScanCode itself reports for them.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parents[1] / "src/stackcoder/data/licenses/permissive.json"
PERMISSIVE_CATEGORIES = ("Permissive", "Public Domain")
# whole categories that never grant a copyright license on their own
AMENDMENT_CATEGORIES = ("CLA", "Patent License")
# "Unstated License" keys that are notices next to a license, not licenses
AMENDMENT_KEYS = (
    "generic-trademark",
    "trademark-notice",
    "warranty-disclaimer",
    "here-disclaimer",
    "generic-export-compliance",
    "generic-tos",
)


def scancode_licenses() -> list[dict]:
    import licensedcode

    folder = Path(licensedcode.__file__).parent / "data/licenses"
    out = []
    for path in sorted(folder.glob("*.LICENSE")):
        front = path.read_text(encoding="utf-8").split("---", 2)[1]
        out.append(yaml.safe_load(front))
    return out


def spdx_ids(lic: dict) -> list[str]:
    main = lic.get("spdx_license_key") or f"LicenseRef-scancode-{lic['key']}"
    return [main, *(lic.get("other_spdx_license_keys") or [])]


def role(lic: dict) -> str:
    category = lic.get("category")
    if lic.get("is_unknown"):
        return "unknown"
    if category in AMENDMENT_CATEGORIES or lic["key"] in AMENDMENT_KEYS:
        return "amendments"
    # an exception with no stated license (e.g. generic-exception, pcre2-exception) only amends the
    # license it is attached to, which is detected on its own
    if category == "Unstated License" and lic.get("is_exception"):
        return "amendments"
    if category in PERMISSIVE_CATEGORIES:
        return "permissive"
    return "other"


def load_blueoak(arg: str | None) -> tuple[list[dict], str]:
    with tempfile.TemporaryDirectory() as tmp:
        if arg is None:
            subprocess.run(["npm", "pack", "@blueoak/list", "--pack-destination", tmp], check=True)
            arg = str(next(Path(tmp).glob("*.tgz")))
        if arg.endswith((".tgz", ".tar.gz")):
            with tarfile.open(arg) as tar:
                meta = json.load(tar.extractfile("package/package.json"))
                ratings = json.load(tar.extractfile("package/index.json"))
        else:  # an unpacked package/index.json, package.json beside it
            ratings = json.loads(Path(arg).read_text())
            meta = json.loads((Path(arg).parent / "package.json").read_text())
    return ratings, f"{meta['name']} {meta['version']} (npm)"


def build(blueoak_arg: str | None) -> dict:
    roles: dict[str, dict[str, list[str]]] = {"permissive": {}, "amendments": {}, "unknown": {}}
    non_permissive: dict[str, str] = {}
    licenses = scancode_licenses()
    for lic in licenses:
        kind = role(lic)
        for spdx in spdx_ids(lic):
            if kind == "other":
                non_permissive.setdefault(spdx, lic["key"])
            else:
                roles[kind].setdefault(spdx, []).append(f"scancode:{lic['key']}/{lic.get('category')}")
    ratings, blueoak_version = load_blueoak(blueoak_arg)
    for rating in ratings:
        for lic in rating["licenses"]:
            roles["permissive"].setdefault(lic["id"], []).append(f"blueoak:{rating['name']}")
    # an id both permissive and not (two ScanCode keys sharing an SPDX id, or Blue Oak vs ScanCode):
    # the recipe's union rule makes it permissive; list them so a reviewer sees them
    conflicts = sorted(set(roles["permissive"]) & set(non_permissive))
    for spdx in conflicts:
        print(
            f"note: {spdx} permissive by {roles['permissive'][spdx]}, also {non_permissive[spdx]}",
            file=sys.stderr,
        )
    scancode_version = importlib.metadata.version("scancode-toolkit")
    origin = {
        "scancode": f"scancode-toolkit {scancode_version}: categories of licensedcode/data/licenses/"
        f"*.LICENSE ({len(licenses)} keys); permissive = {list(PERMISSIVE_CATEGORIES)}",
        "blueoak": f"{blueoak_version}, Blue Oak Council license list https://blueoakcouncil.org/list, "
        "all ratings",
        "generated": datetime.date.today().isoformat(),
        "script": "scripts/make_permissive_list.py",
        "values": "each id maps to where it comes from: scancode:<key>/<category> or blueoak:<rating>",
    }
    out: dict = {"origin": origin}
    for kind, ids in roles.items():
        out[kind] = {spdx: " ".join(src) for spdx, src in sorted(ids.items(), key=lambda kv: kv[0].lower())}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blueoak", help="@blueoak/list npm tarball or its index.json (default: npm pack)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    data = build(args.blueoak)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    counts = ", ".join(f"{len(data[k])} {k}" for k in ("permissive", "amendments", "unknown"))
    print(f"wrote {args.out}: {counts}")


if __name__ == "__main__":
    main()
