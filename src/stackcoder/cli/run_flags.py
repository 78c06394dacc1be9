"""The flags saying where a verb runs, shared by ``build``, ``tokenize`` and ``index build``
(``add_run_flags`` -> ``data.executor.RunOptions``) and, for Slurm, by ``train`` (``add_slurm_flags``
-> ``stackcoder.slurm.SlurmOptions``). Defaults are read from the dataclasses, so they are written once.

Older spellings stay as aliases: ``-q``/``--quiet`` and ``--no-progress`` are the same flag.
"""

from __future__ import annotations

import argparse
import sys

from stackcoder.data.options import EXECUTORS, RunOptions
from stackcoder.slurm import SlurmOptions, parse_sbatch_args

DEFAULTS = RunOptions()


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    """``--executor --workers --ray-address --quiet`` and the Slurm flags."""
    g = parser.add_argument_group("where it runs")
    g.add_argument(
        "--executor",
        choices=EXECUTORS,
        default=DEFAULTS.executor,
        help="datatrove executor: processes here, a Ray cluster, or Slurm job arrays; default: %(default)s",
    )
    g.add_argument(
        "-w",
        "--workers",
        type=int,
        default=DEFAULTS.workers,
        metavar="N",
        help="tasks run at the same time (default: one per core here or on Ray; no limit on Slurm); "
        "the output does not depend on it",
    )
    g.add_argument(
        "--ray-address",
        default=DEFAULTS.ray_address,
        metavar="ADDR",
        help="join this Ray cluster (default: start a local one)",
    )
    g.add_argument(
        "-q",
        "--quiet",
        "--no-progress",
        dest="quiet",
        action="store_true",
        help="no progress bars (build: no summary either)",
    )
    g = parser.add_argument_group("on Slurm (--executor slurm; docs/scaling.md)")
    add_slurm_flags(g, DEFAULTS.slurm, "each task")
    g.add_argument(
        "--tasks-per-job",
        type=int,
        default=DEFAULTS.slurm.tasks_per_job,
        metavar="K",
        help="tasks each array element runs in one process, so that its start (ScanCode's index: ~5 s) "
        "is paid once per K tasks; default: enough that the array is no larger than the partition's CPUs "
        "(or --workers)",
    )


def add_slurm_flags(g: argparse._ActionsContainer, defaults: SlurmOptions, tasks: str) -> None:
    """The Slurm flags, with ``defaults``, in parser or group ``g``; ``tasks`` says what one
    ``--cpus-per-task`` is for."""
    g.add_argument("--partition", default=defaults.partition, metavar="P", help="default: the cluster's")
    g.add_argument(
        "--time",
        default=defaults.time,
        metavar="T",
        help="time limit per job (e.g. 4:00:00); default: the partition's",
    )
    g.add_argument(
        "--cpus-per-task",
        type=int,
        default=defaults.cpus_per_task,
        metavar="N",
        help=f"CPUs for {tasks}; default: " + str(defaults.cpus_per_task or "one per process"),
    )
    g.add_argument(
        "--mem-per-cpu",
        default=defaults.mem_per_cpu,
        metavar="SIZE",
        help="memory per CPU, e.g. 2500M or 4G; default: " + (defaults.mem_per_cpu or "the cluster's"),
    )
    g.add_argument(
        "--qos", default=defaults.qos, metavar="Q", help="quality of service; default: the cluster's"
    )
    g.add_argument(
        "--sbatch-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other sbatch option, e.g. account=myacct or exclusive (repeatable)",
    )
    g.add_argument(
        "--slurm-logs",
        default=defaults.logs,
        metavar="DIR",
        help="where Slurm writes each job's output (default: beside the run's logs)",
    )
    g.add_argument(
        "--wait",
        action="store_true",
        help="follow the jobs until they end instead of returning once submitted",
    )


def slurm_options(args: argparse.Namespace) -> SlurmOptions:
    return SlurmOptions(
        partition=args.partition,
        time=args.time,
        cpus_per_task=args.cpus_per_task,
        mem_per_cpu=args.mem_per_cpu,
        qos=args.qos,
        sbatch_args=parse_sbatch_args(args.sbatch_arg),
        logs=args.slurm_logs,
        wait=args.wait,
        tasks_per_job=getattr(args, "tasks_per_job", None),
    )


def run_options(args: argparse.Namespace) -> RunOptions:
    """The ``RunOptions`` of ``add_run_flags``'s flags; progress bars only on a terminal."""
    return RunOptions(
        executor=args.executor,
        workers=args.workers,
        ray_address=args.ray_address,
        progress=not args.quiet and sys.stderr.isatty(),
        slurm=slurm_options(args),
    )
