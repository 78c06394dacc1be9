"""`stackcoder build SOURCE... --output DIR`: The Stack v2 pipeline, from repositories to files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stackcoder.cli.run_flags import add_run_flags, run_options
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
            "npm tarball is one repository) or a Parquet/JSONL file of The Stack v2 records. The "
            ".ipynb files of every SOURCE also become DIR/jupyter_scripts/ and DIR/jupyter_structured/ "
            "(recipe [jupyter], docs/sources.md)."
        ),
    )
    p.add_argument(
        "sources", nargs="*", metavar="SOURCE", help="repositories to read (optional with --events or --text)"
    )
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
        help="owners and owner/repo patterns to drop, one per line; user:LOGIN drops a person's issues, "
        "PRs and comments (repeatable; see `stackcoder optout`)",
    )
    p.add_argument(
        "--events",
        action="append",
        default=[],
        metavar="FILE",
        help="GHArchive hourly dump (.json.gz), or a directory of them: also build DIR/issues/ and "
        "DIR/pull_requests/; PR files are read from the git SOURCEs (repeatable; docs/gharchive.md)",
    )
    p.add_argument(
        "--benchmark",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="decontaminate against a local benchmark file: mbpp, apps, gsm8k, ds1000 (HumanEval built in)",
    )
    p.add_argument(
        "--text",
        action="append",
        default=[],
        metavar="[KIND=]FILE",
        help="also build DIR/text/KIND/ from JSONL(.gz)/Parquet records with a `text` field "
        "(documentation, Q&A, math...; repeatable; the kind's steps: recipe [text], docs/sources.md)",
    )
    p.add_argument(
        "--tasks",
        type=int,
        default=None,
        help="split the sources into this many tasks (default: one per source, at most 32); "
        "the output does not depend on --workers or --executor",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a build with other settings in DIR")
    p.add_argument("-v", "--verbose", action="store_true", help="show datatrove's log")
    add_run_flags(p)  # -q/--quiet also leaves out the summary
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from stackcoder.data.build import BuildConfig, build
    from stackcoder.data.executor import configure_logs
    from stackcoder.data.layout import DatasetLayout
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
        texts=args.text,
        events=args.events,
        tasks=args.tasks,
        overwrite=args.overwrite,
        run=run_options(args),
    )
    result = build(config)
    out = DatasetLayout(result.output)
    if result.stats is None:
        logs = out.logs()
        print(f"submitted to Slurm; follow it with: stackcoder status {out.root} --wait  (logs: {logs})")
        return 0
    if not args.quiet:
        print(format_summary(result.stats))
        print()
    print(f"files:     {out.files}")
    print(f"documents: {out.documents}")
    for part, stats in result.stats.get("parts", {}).items():  # notebooks, --text kinds (recipe.md §6)
        if stats["totals"]["files_kept"]:
            print(f"{part + ':':<10} {out.part(part)}")
    print(f"removed:   {out.removed}")
    print(f"stats:     {out.stats}")
    print(f"card:      {out.card}")
    sys.stdout.flush()
    return 0
