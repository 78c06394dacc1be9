"""Download the demo corpus into a cache and lay it out for ``stackcoder build --repos-dir``.

Each package comes from its own registry: npm tarballs through ``npm pack --ignore-scripts``, Debian
packages through ``apt-get download``, PyPI sdists through the index's Simple API (PEP 691), the
protocol pip speaks. Not ``pip download``: it prepares metadata for every sdist, which runs the
package's build backend (setup.py, maturin, ...), and the demo must not run other people's code.
Every artifact is checked against the sha256 pinned in ``manifest.toml`` before it is used.

Layout of the cache::

    downloads/<ecosystem>/<file>    the artifacts as the registries serve them
    repos/<owner>__<name>-<version>.tar.gz|.tgz|.zip    sdists and npm tarballs (hard links)
    repos/<owner>__<name>-<version>/    Debian packages: the source subtree + debian/copyright (debian.py)
    repos/.<owner>__<name>-<version>.layout    its layout version (an older layout is extracted again)
    repo_metadata.jsonl             one row per repository in repos/, for --repo-metadata
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from datatrove.utils.logging import logger
from tqdm import tqdm

from stackcoder.atomic import write_text
from stackcoder.data.demo.debian import LAYOUT_VERSION, extract_source
from stackcoder.data.demo.manifest import METADATA_FILE, Package, default_cache, load_manifest, select
from stackcoder.errors import UserError

DEFAULT_INDEX = "https://pypi.org/simple"
_TIMEOUT = 120  # seconds per HTTP request; pip's default is 15, large sdists on slow links need more


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --- the clients: each writes the package's artifact into an empty directory and returns its path


def _run(cmd: list[str], cwd: Path, pkg: Package) -> None:
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired as e:
        raise UserError(f"{pkg.name}: `{' '.join(cmd)}` timed out") from e
    if r.returncode != 0:
        # apt-get as root warns that `_apt` cannot read the directory: harmless, not the error
        lines = [ln.strip() for ln in (r.stderr + r.stdout).splitlines() if ln.strip() and "_apt" not in ln]
        hint = " (is the package list current? run `apt-get update`)" if cmd[0] == "apt-get" else ""
        raise UserError(f"{pkg.name}: `{' '.join(cmd)}` failed: {' | '.join(lines[:2])}{hint}")


def _ssl_context() -> ssl.SSLContext:
    cafile = os.environ.get("PIP_CERT") or None  # honour pip's CA bundle where one is set
    return ssl.create_default_context(cafile=cafile)


def _sdist_name(pkg: Package, filenames: list[str]) -> str:
    """The sdist of ``pkg.version`` among an index's files (for pinning a new package)."""
    norm = re.sub(r"[-_.]+", "_", f"{pkg.name}-{pkg.version}").lower()
    for name in filenames:
        stem = re.sub(r"\.(tar\.gz|tar\.bz2|tar\.xz|zip)$", "", name)
        if stem != name and re.sub(r"[-_.]+", "_", stem).lower() == norm:
            return name
    raise UserError(f"{pkg.name}: no sdist of version {pkg.version} on the index")


def fetch_pypi(pkg: Package, into: Path) -> Path:
    """The sdist ``pkg.file`` from the package index (``$PIP_INDEX_URL`` or PyPI), via PEP 691 JSON."""
    index = os.environ.get("PIP_INDEX_URL", DEFAULT_INDEX).rstrip("/")
    project = re.sub(r"[-_.]+", "-", pkg.name).lower()  # PEP 503 normalised name
    request = urllib.request.Request(
        f"{index}/{project}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    ctx = _ssl_context()
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT, context=ctx) as r:
            files = json.load(r)["files"]
        wanted = pkg.file or _sdist_name(pkg, [f["filename"] for f in files])
        url = next((f["url"] for f in files if f["filename"] == wanted), None)
        if url is None:
            raise UserError(f"{pkg.name}: {wanted} is not on {index}")
        url = urllib.parse.urljoin(f"{index}/{project}/", url)
        out = into / wanted
        with urllib.request.urlopen(url, timeout=_TIMEOUT, context=ctx) as r, open(out, "wb") as f:
            shutil.copyfileobj(r, f)
    except (urllib.error.URLError, OSError, ValueError, KeyError) as e:
        raise UserError(f"{pkg.name}: cannot download from {index}: {e}") from e
    return out


def fetch_npm(pkg: Package, into: Path) -> Path:
    # npm pack only downloads a registry tarball; --ignore-scripts makes sure nothing else ever runs
    cmd = ["npm", "pack", pkg.spec, "--ignore-scripts", "--pack-destination", str(into)]
    _run(cmd, into, pkg)
    return _made(into, pkg)


def fetch_debian(pkg: Package, into: Path) -> Path:
    _run(["apt-get", "download", "-q", pkg.spec], into, pkg)
    return _made(into, pkg)


def _made(into: Path, pkg: Package) -> Path:
    """The one file a client wrote into the empty directory ``into``."""
    made = sorted(p for p in into.iterdir() if p.is_file())
    if len(made) != 1:
        names = ", ".join(p.name for p in made) or "nothing"
        raise UserError(f"{pkg.name}: expected one file from the {pkg.ecosystem} client, got {names}")
    return made[0]


FETCHERS: dict[str, Callable[[Package, Path], Path]] = {
    "pypi": fetch_pypi,
    "npm": fetch_npm,
    "debian": fetch_debian,
}
CLIENTS = {"npm": "npm", "debian": "apt-get"}  # what each ecosystem needs on PATH


# --- one package: artifact (cached or fetched, then verified), then its repos/ entry


def _artifact(cache: Path, pkg: Package) -> tuple[Path, bool]:
    """The verified artifact in ``downloads/``, and whether it was downloaded now."""
    dest = cache / "downloads" / pkg.ecosystem / pkg.file
    if dest.is_file() and sha256_file(dest) == pkg.sha256:
        return dest, False
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".fetch-") as tmp:
        got = FETCHERS[pkg.ecosystem](pkg, Path(tmp))
        if got.name != pkg.file:
            raise UserError(f"{pkg.name}: expected {pkg.file} from {pkg.ecosystem}, got {got.name}")
        digest = sha256_file(got)
        if digest != pkg.sha256:
            got.unlink()
            dest.unlink(missing_ok=True)
            raise UserError(
                f"{pkg.name} {pkg.version}: sha256 mismatch for {pkg.file} (pinned {pkg.sha256[:12]}..., "
                f"got {digest[:12]}...); the file was deleted"
            )
        os.replace(got, dest)
    return dest, True


def _arrange(cache: Path, pkg: Package, artifact: Path) -> Path:
    """Create ``repos/<pkg.source>`` from the artifact, unless it is already there."""
    repos = cache / "repos"
    repos.mkdir(parents=True, exist_ok=True)
    entry = repos / pkg.source
    if pkg.ecosystem == "debian":
        # the entry is written by a rename, so it is complete; the marker says which layout it has,
        # and an older one (say, without debian/copyright) is extracted again rather than kept
        marker = repos / f".{pkg.source}.layout"
        current = marker.is_file() and marker.read_text(encoding="utf-8").strip() == LAYOUT_VERSION
        if entry.is_dir() and current:
            return entry
        with tempfile.TemporaryDirectory(dir=repos, prefix=".extract-") as tmp:
            extract_source(artifact, Path(tmp) / "src")
            if entry.is_dir():  # a stale layout: moved aside into tmp, deleted with it
                os.replace(entry, Path(tmp) / "old")
            os.replace(Path(tmp) / "src", entry)
        marker.write_text(LAYOUT_VERSION + "\n", encoding="utf-8")
        return entry
    if entry.is_file() and os.path.samefile(entry, artifact):
        return entry
    tmp = repos / f".{pkg.source}.tmp"
    tmp.unlink(missing_ok=True)
    try:
        os.link(artifact, tmp)
    except OSError:  # another file system, or no hard links: copy
        shutil.copyfile(artifact, tmp)
    os.replace(tmp, entry)
    return entry


def _fetch_one(cache: Path, pkg: Package) -> bool:
    artifact, downloaded = _artifact(cache, pkg)
    _arrange(cache, pkg, artifact)
    return downloaded


def _available(packages: list[Package]) -> list[Package]:
    """Drop the Debian packages on a machine without apt-get (one warning); other clients must exist."""
    if any(p.ecosystem == "debian" for p in packages) and shutil.which("apt-get") is None:
        n = sum(p.ecosystem == "debian" for p in packages)
        logger.warning(f"apt-get not found (not a Debian system?): skipping the {n} Debian packages")
        packages = [p for p in packages if p.ecosystem != "debian"]
    if any(p.ecosystem == "npm" for p in packages) and shutil.which("npm") is None:
        raise UserError("npm not found: install Node.js (it brings npm), or pick other packages with --only")
    return packages


def write_metadata(cache: Path, packages: list[Package]) -> Path:
    """``repo_metadata.jsonl``: one row per manifest package whose ``repos/`` entry exists.

    Only what ``--repo-metadata`` reads: the name and the entry. No host license, on purpose: the
    build would take it instead of running ScanCode, which the demo is there to exercise. The rest
    of a package's record (version, declared license) is in the manifest (`stackcoder demo list`).
    """
    path = cache / METADATA_FILE
    rows = [
        {"repo_name": p.repo_name, "source": p.source}
        for p in packages
        if (cache / "repos" / p.source).exists()
    ]
    write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
    return path


def download_corpus(
    cache_dir: Path | None = None,
    only: list[str] | None = None,
    progress: bool = True,
    packages: list[Package] | None = None,
    workers: int = 4,
) -> Path:
    """Download (or reuse) the demo packages into ``cache_dir`` and return it.

    ``only`` picks packages by name or repo name; ``packages`` replaces the shipped manifest.
    Failures are collected and raised together as one ``UserError`` after the others finish.
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache()
    manifest = packages if packages is not None else load_manifest()
    chosen = _available(select(manifest, only))
    cache.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    downloaded = 0
    with (
        ThreadPoolExecutor(max_workers=max(1, workers)) as pool,
        tqdm(total=len(chosen), unit="pkg", desc="demo corpus", disable=not progress) as bar,
    ):
        futures = {pool.submit(_fetch_one, cache, p): p for p in chosen}
        for future in as_completed(futures):
            try:
                downloaded += future.result()
            except UserError as e:
                errors.append(str(e))
            bar.update()
    write_metadata(cache, manifest)
    cached = len(chosen) - downloaded - len(errors)
    logger.info(f"demo corpus: {downloaded} downloaded, {cached} cached, {len(errors)} failed")
    if errors:
        raise UserError(f"{len(errors)} of {len(chosen)} packages failed: " + "; ".join(sorted(errors)))
    return cache


def pin(ecosystem: str, name: str, version: str, arch: str | None = None) -> dict:
    """Download one package into a temporary directory and return its manifest fields to fill in.

    The artifact's name and sha256 come from what the client delivers; read the archive (its license
    files and READMEs) before choosing ``expect_license_class`` (docs/demo-corpus.md).
    """
    if ecosystem not in FETCHERS:
        raise UserError(f"ecosystem must be one of {sorted(FETCHERS)}, not {ecosystem!r}")
    if ecosystem in CLIENTS and shutil.which(CLIENTS[ecosystem]) is None:
        raise UserError(f"{CLIENTS[ecosystem]} not found: it is needed to download {ecosystem} packages")
    pkg = Package(ecosystem, name, version, "", "", "", "", "", (), arch=arch)
    with tempfile.TemporaryDirectory(prefix="stackcoder-pin-") as tmp:
        got = FETCHERS[ecosystem](pkg, Path(tmp))
        row = {"ecosystem": ecosystem, "name": name, "version": version, "file": got.name}
        row["sha256"] = sha256_file(got)
        row["size"] = got.stat().st_size
    if arch:
        row["arch"] = arch
    return row
