"""`stackcoder demo download|list|pin`: the demo corpus of real packages (docs/demo-corpus.md)."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from stackcoder.data.demo.manifest import default_cache  # light: the help text shows the resolved cache


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the demo corpus: real packages to run the pipeline on")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    dl = actions.add_parser(
        "download",
        help="download the demo packages into a cache (checksums verified, cached ones skipped)",
        description="Download the pinned demo packages with npm, apt-get and the PyPI index, verify their "
        "sha256, and lay them out as repositories for `stackcoder build --repos-dir`.",
    )
    dl.add_argument("--cache", metavar="DIR", type=Path, help=f"cache directory (default: {default_cache()})")
    dl.add_argument("--only", metavar="NAME", nargs="+", help="only these packages (names or repo names)")
    dl.add_argument("--workers", type=int, default=4, help="downloads at a time (default: 4)")
    dl.add_argument("--quiet", action="store_true", help="no progress bar")
    dl.set_defaults(run=run_download)

    ls = actions.add_parser("list", help="print the manifest as a table")
    ls.set_defaults(run=run_list)

    pn = actions.add_parser(
        "pin",
        help="download one package and print its file name and sha256, to add it to the manifest",
    )
    pn.add_argument("ecosystem", choices=["pypi", "npm", "debian"])
    pn.add_argument("name")
    pn.add_argument("version")
    pn.add_argument("--arch", help="Debian: the architecture of an arch-specific package (e.g. amd64)")
    pn.set_defaults(run=run_pin)


def run_download(args: argparse.Namespace) -> int:
    from stackcoder.data.demo.download import download_corpus
    from stackcoder.data.demo.manifest import METADATA_FILE
    from stackcoder.data.executor import configure_logs

    configure_logs()
    cache = download_corpus(args.cache, only=args.only, progress=not args.quiet, workers=args.workers)
    repos, metadata = cache / "repos", cache / METADATA_FILE
    n = sum(1 for _ in metadata.open(encoding="utf-8"))
    print(f"repositories: {repos} ({n} in {metadata.name})")
    print(f"metadata:     {metadata}")
    print("next:")
    cmd = ["stackcoder", "build", "--repos-dir", str(repos), "--repo-metadata", str(metadata)]
    print("  " + shlex.join([*cmd, "--output", str(cache / "build")]))
    return 0


def run_list(args: argparse.Namespace) -> int:
    from stackcoder.data.demo.manifest import load_manifest

    header = ("package", "ecosystem", "version", "repo_name", "license", "expected class", "languages")
    rows = []
    for p in load_manifest():
        languages = ", ".join(p.languages)
        rows.append(
            (p.name, p.ecosystem, p.version, p.repo_name, p.license, p.expect_license_class, languages)
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


def run_pin(args: argparse.Namespace) -> int:
    from stackcoder.data.demo.download import pin

    row = pin(args.ecosystem, args.name, args.version, args.arch)
    size = row.pop("size")
    print(f"# {row['file']}: {size:,} bytes; inspect its license files, then fill in the rest")
    print("[[package]]")
    for key, value in row.items():
        print(f"{key} = {json.dumps(value)}")
    print('repo_name = "owner/name"\nlicense = ""\nexpect_license_class = ""\nlanguages = []')
    return 0
