"""`stackcoder status DIR`: how far a build, tokenization or index submitted to Slurm has got."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "status",
        help="progress of a build, tokenize or index build submitted with --executor slurm",
        description=(
            "Per pass: tasks done, running, pending, failed and not run (a pass before it failed, or "
            "cancelled), from the completion markers and Slurm's queue; then every failed task with its "
            "log. Rerunning the command that submitted the work resubmits only the tasks that did not "
            "complete."
        ),
    )
    p.add_argument("dir", metavar="DIR", type=Path, help="the --output of the command that submitted it")
    p.add_argument(
        "--wait", action="store_true", help="follow it until it ends, with a progress bar per pass"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from stackcoder.data.slurm import follow, format_status, logs_of

    logs = logs_of(args.dir)
    if args.wait:
        follow(logs)
    print(format_status(logs))
    return 0
