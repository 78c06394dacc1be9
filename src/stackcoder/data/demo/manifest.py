"""The demo corpus manifest: real packages pinned by version and sha256 (docs/demo-corpus.md).

Each entry is one repository for ``stackcoder build --repos-dir``: a PyPI sdist, an npm tarball, or
the source subtree of a Debian ``golang-*-dev`` / ``librust-*-dev`` / ``elpa-*`` package with its
``debian/copyright``. ``expect_license_class``
is what a ScanCode-based pipeline should conclude for the repository's root (recipe.md §1.2), as
checked by hand and by ScanCode on the package's license-like files.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from stackcoder.data import fields as F
from stackcoder.errors import UserError

METADATA_FILE = "repo_metadata.jsonl"  # the cache's --repo-metadata file (demo/download.py writes it)


def default_cache() -> Path:
    """``$STACKCODER_CACHE``, else ``~/.cache/stackcoder/demo``."""
    env = os.environ.get("STACKCODER_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "stackcoder" / "demo"


MANIFEST = Path(__file__).with_name("manifest.toml")
ECOSYSTEMS = ("pypi", "npm", "debian")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# the artifact names the clients produce; the repos/ entry keeps the archive's extension
_ARCHIVE_EXTENSIONS = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip")


@dataclass(frozen=True)
class Package:
    ecosystem: str
    name: str
    version: str
    file: str  # the artifact's name as the registry serves it, e.g. "PyYAML-6.0.1.tar.gz"
    sha256: str
    repo_name: str
    license: str  # the SPDX expression the package declares; for the record only
    expect_license_class: str
    languages: tuple[str, ...]
    arch: str | None = None  # Debian only: the architecture of an arch-specific .deb (its sha256 is per arch)
    note: str = ""

    @property
    def slug(self) -> str:
        """The repository's entry name in ``repos/`` without extension, e.g. ``psf__requests-2.31.0``."""
        return f"{self.repo_name.replace('/', '__')}-{self.version}".replace(":", "_")

    @property
    def source(self) -> str:
        """The ``repos/`` entry: the archive itself (sdist, npm), or a directory (Debian, extracted)."""
        if self.ecosystem == "debian":
            return self.slug
        ext = next(e for e in _ARCHIVE_EXTENSIONS if self.file.endswith(e))
        return self.slug + ext

    @property
    def spec(self) -> str:
        """What the ecosystem's client is asked for."""
        if self.ecosystem == "pypi":
            return f"{self.name}=={self.version}"
        if self.ecosystem == "npm":
            return f"{self.name}@{self.version}"
        return f"{self.name}:{self.arch}={self.version}" if self.arch else f"{self.name}={self.version}"


_REQUIRED = {
    "ecosystem": str,
    "name": str,
    "version": str,
    "file": str,
    "sha256": str,
    "repo_name": str,
    "license": str,
    "expect_license_class": str,
    "languages": list,
}
_OPTIONAL = {"arch": str, "note": str}


def _package(row: dict, where: str) -> Package:
    for key, typ in _REQUIRED.items():
        if not isinstance(row.get(key), typ) or not row[key]:
            raise UserError(f"{where}: `{key}` must be a non-empty {typ.__name__}")
    for key, typ in _OPTIONAL.items():
        if key in row and not isinstance(row[key], typ):
            raise UserError(f"{where}: `{key}` must be a {typ.__name__}")
    unknown = set(row) - set(_REQUIRED) - set(_OPTIONAL)
    if unknown:
        raise UserError(f"{where}: unknown keys {sorted(unknown)}")
    if row["ecosystem"] not in ECOSYSTEMS:
        raise UserError(f"{where}: ecosystem must be one of {ECOSYSTEMS}, not {row['ecosystem']!r}")
    if not _SHA256.fullmatch(row["sha256"]):
        raise UserError(f"{where}: sha256 must be 64 lower-case hex digits")
    if row["expect_license_class"] not in F.LICENSE_CLASSES:
        raise UserError(f"{where}: expect_license_class must be one of {F.LICENSE_CLASSES}")
    if "/" not in row["repo_name"].strip("/"):
        raise UserError(f"{where}: repo_name must be owner/name (or <ecosystem>/<name>)")
    if row["ecosystem"] != "debian" and not row["file"].endswith(_ARCHIVE_EXTENSIONS):
        raise UserError(f"{where}: file must be one of {_ARCHIVE_EXTENSIONS}, not {row['file']!r}")
    if row["ecosystem"] == "debian" and not row["file"].endswith(".deb"):
        raise UserError(f"{where}: a Debian file must be a .deb, not {row['file']!r}")
    if "/" in row["file"] or row["file"].startswith("."):
        raise UserError(f"{where}: file must be a plain file name, not {row['file']!r}")
    if not all(isinstance(x, str) and x for x in row["languages"]):
        raise UserError(f"{where}: languages must be a list of language names")
    return Package(**{**row, "languages": tuple(row["languages"])})


def load_manifest(path: str | Path = MANIFEST) -> list[Package]:
    """The packages of ``path`` (default: the shipped manifest), validated; names and repos are unique."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise UserError(f"cannot read the demo manifest {path}: {e}") from e
    rows = data.get("package")
    if not isinstance(rows, list) or not rows:
        raise UserError(f"{path}: no [[package]] entries")
    packages = [_package(r, f"{path.name}: package {i} ({r.get('name')})") for i, r in enumerate(rows, 1)]
    for attr in ("name", "repo_name", "source", "file"):
        seen: set[str] = set()
        for p in packages:
            value = getattr(p, attr)
            if value in seen:
                raise UserError(f"{path.name}: two packages share the {attr} {value!r}")
            seen.add(value)
    return packages


def select(packages: list[Package], only: list[str] | None) -> list[Package]:
    """The packages named in ``only`` (package names or repo names), all of them when ``only`` is None."""
    if not only:
        return list(packages)
    wanted = set(only)
    chosen = [p for p in packages if p.name in wanted or p.repo_name in wanted]
    missing = wanted - {p.name for p in chosen} - {p.repo_name for p in chosen}
    if missing:
        names = ", ".join(sorted(missing))
        raise UserError(f"not in the demo manifest: {names} (see `stackcoder demo list`)")
    return chosen
