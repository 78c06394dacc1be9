"""`stackcoder build SOURCE... --output DIR`: The Stack v2 pipeline, from repositories to files."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from stackcoder.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build",
        help="build a dataset from repositories (The Stack v2 recipe)",
        description=(
            "Read repositories, detect languages and licenses, apply The Stack v2's filters, and write "
            "DIR/files/*.parquet (kept files), DIR/removed/*.parquet (every removed file with its stage "
            "and reason) and DIR/stats.json. Rerunning the same command resumes an interrupted build."
        ),
        epilog=(
            "A SOURCE is a directory (one repository), a git repository (work tree or bare; the default "
            "branch's latest commit is read), an archive (.tar.gz .tgz .tar.bz2 .tar.xz .zip: an sdist or "
            "npm tarball is one repository) or a Parquet/JSONL file of The Stack v2 records."
        ),
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="repositories to read")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="DIR", help="output directory")
    p.add_argument(
        "--repos-dir",
        action="store_true",
        help="each SOURCE is a directory whose entries (directories, git repos, archives) are repositories",
    )
    p.add_argument(
        "--source-type",
        choices=["auto", "dir", "git", "archive", "table"],
        default="auto",
        help="how to read every SOURCE (default: detect)",
    )
    p.add_argument(
        "--repo-metadata",
        metavar="FILE",
        help="CSV or JSONL with repo_name, stars, forks, license (host), dates; optional 'source' column",
    )
    p.add_argument("--recipe", metavar="FILE", help="TOML merged over the default recipe (see `recipe show`)")
    p.add_argument(
        "--opt-out",
        action="append",
        default=[],
        metavar="FILE",
        help="owners and owner/repo patterns to drop, one per line (repeatable; see `stackcoder optout`)",
    )
    p.add_argument(
        "--benchmark",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="decontaminate against a local benchmark file: mbpp, apps, gsm8k, ds1000 (HumanEval built in)",
    )
    p.add_argument(
        "-w",
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="tasks run at the same time (default: number of cores)",
    )
    p.add_argument(
        "--tasks",
        type=int,
        default=None,
        help="split the sources into this many tasks (default: one per source, at most 32); "
        "the output does not depend on --workers or --executor",
    )
    p.add_argument("--executor", choices=["local", "ray"], default="local", help="datatrove executor")
    p.add_argument("--ray-address", metavar="ADDR", help="join this Ray cluster (default: start a local one)")
    p.add_argument("--overwrite", action="store_true", help="replace a build with other settings in DIR")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary")
    p.add_argument("-v", "--verbose", action="store_true", help="show datatrove's log")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from stackcoder.data.executor import configure_logs
    from stackcoder.data.pipeline import BuildConfig, build
    from stackcoder.data.report import format_summary

    configure_logs(args.verbose)
    benchmarks: dict[str, str] = {}
    for spec in args.benchmark:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise UserError(f"--benchmark {spec!r}: expected NAME=PATH")
        benchmarks[name.strip().lower()] = path
    config = BuildConfig(
        sources=args.sources,
        output=args.output,
        repos_dir=args.repos_dir,
        source_type=args.source_type,
        repo_metadata=args.repo_metadata,
        recipe=args.recipe,
        opt_out_files=args.opt_out,
        benchmark_files=benchmarks,
        workers=args.workers,
        tasks=args.tasks,
        executor=args.executor,
        ray_address=args.ray_address,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    result = build(config)
    if not args.quiet:
        print(format_summary(result.stats))
        print()
    out = result.output
    print(f"files:     {out / 'files'}")
    print(f"documents: {out / 'documents'}")
    print(f"removed:   {out / 'removed'}")
    print(f"stats:     {out / 'stats.json'}")
    print(f"card:      {out / 'README.md'}")
    sys.stdout.flush()
    return 0
