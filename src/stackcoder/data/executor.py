"""Run passes of steps on datatrove's local, Ray or Slurm executor (``RunOptions``), with a progress bar.

Steps do not know where they run (style.md, datatrove). Every executor writes per-task stats and
completion markers under the logging directory, so a rerun skips finished tasks: that is how a
killed build resumes. The local and Ray executors run the passes one after the other here; on Slurm
(``data/slurm.py``) the whole chain is submitted at once, one job array per pass.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from datatrove.executor.local import LocalPipelineExecutor
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.logging import logger
from datatrove.utils.stats import PipelineStats
from tqdm import tqdm

from stackcoder.data.options import EXECUTORS, RunOptions
from stackcoder.errors import UserError

__all__ = ["EXECUTORS", "Pass", "RunOptions", "configure_logs", "run_passes", "run_steps"]


@dataclass
class Pass:
    """One run of an executor: ``steps`` as ``tasks`` tasks; a build is a list of passes, each
    started when the one before it has completed (dedup needs every shard's signatures)."""

    name: str
    steps: list[PipelineStep]
    tasks: int


_log_level: str | None = None  # set by configure_logs; None leaves datatrove's own setup alone


def configure_logs(verbose: bool = False) -> None:
    """Show warnings only (INFO with ``verbose``) on stderr: the CLI shows progress bars instead."""
    global _log_level
    _log_level = "INFO" if verbose else "WARNING"
    _apply_log_level(_log_level)


def _apply_log_level(level: str) -> None:
    logger.remove()
    logger.add(sys.stderr, level=level, format="{level}: {message}")


class QuietLocalExecutor(LocalPipelineExecutor):
    """Datatrove echoes local rank 0's INFO log on stderr and, after each task, puts back a DEBUG
    handler (in the worker process too); every task here logs as a non-zero local rank (errors
    only on stderr) and the caller's level is restored after it, in whichever process ran it.
    Full logs stay in logs/logs/task_*.log."""

    def __init__(self, *args, log_level: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.log_level = log_level

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1):
        try:
            return super()._run_for_rank(rank, local_rank + 1, node_rank)
        finally:
            if self.log_level is not None:
                _apply_log_level(self.log_level)

    def save_executor_as_json(self, indent: int = 4) -> None:
        """Not written: it would list every source and the opt-out patterns, which may name opted-out
        repositories (nothing of those may appear in any output); build.json records the settings."""


def _watch(logging_dir: Path, tasks: int, stop: threading.Event, desc: str) -> None:
    done_dir = logging_dir / "completions"
    with tqdm(total=tasks, desc=desc, unit="task", file=sys.stderr, dynamic_ncols=True) as bar:
        while True:
            done = len(list(done_dir.glob("*"))) if done_dir.is_dir() else 0
            bar.update(done - bar.n)
            if stop.wait(0.5):
                done = len(list(done_dir.glob("*"))) if done_dir.is_dir() else 0
                bar.update(done - bar.n)
                return


def _make(
    executor: str,
    steps: list[PipelineStep],
    tasks: int,
    workers: int,
    logging_dir: Path,
    ray_address: str | None,
):
    if executor == "local":
        return QuietLocalExecutor(
            steps, tasks=tasks, workers=workers, logging_dir=str(logging_dir), log_level=_log_level
        )
    if executor == "ray":
        try:
            import ray
        except ImportError:
            raise UserError("--executor ray needs Ray: pip install 'stackcoder[ray]'") from None
        from datatrove.executor.ray import RayPipelineExecutor

        class QuietRayExecutor(RayPipelineExecutor):
            def save_executor_as_json(self, indent: int = 4) -> None:
                """Not written, as for the local executor."""

        if not ray.is_initialized():
            if ray_address:
                ray.init(address=ray_address, log_to_driver=False, logging_level="WARNING")
            else:  # a local Ray instance sized like --workers
                ray.init(
                    num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level="WARNING"
                )
        return QuietRayExecutor(
            steps,
            tasks=tasks,
            workers=workers,
            logging_dir=str(logging_dir),
            cpus_per_task=1,
            # ScanCode's license index alone is ~1.4 GB per worker process
            mem_per_cpu_gb=2.5,
        )
    raise UserError(f"unknown executor {executor!r} (choose from {', '.join(EXECUTORS)})")


def run_passes(
    passes: list[Pass],
    *,
    logs: Path,
    options: RunOptions,
    finish: Callable[[], object] | None = None,
    title: str = "build",
) -> bool:
    """Run ``passes`` in order, each in ``logs/<pass name>``, then ``finish()`` (what is written
    from all the passes' output: stats, summaries). True when all of it is done; False when it was
    submitted to Slurm without ``--wait`` and runs on without us."""
    options.check()
    if options.executor == "slurm":
        from stackcoder.data.slurm import submit

        return submit(passes, logs=logs, options=options, finish=finish, title=title)
    for p in passes:
        run_steps(p.steps, tasks=p.tasks, logging_dir=logs / p.name, options=options, desc=p.name)
        merge_stats(logs / p.name, p.tasks)
    if finish is not None:
        finish()
    return True


def merge_stats(logging_dir: Path, tasks: int) -> None:
    """``stats.json``: the per-task stats of every task of a pass, summed. The local executor writes
    one for the tasks it ran itself (a resumed run would count only the resumed tasks); Slurm's
    array tasks write none."""
    parts = [logging_dir / "stats" / f"{rank:05d}.json" for rank in range(tasks)]
    merged = sum(
        (PipelineStats.from_json(json.loads(f.read_text())) for f in parts if f.is_file()), PipelineStats()
    )
    with open(logging_dir / "stats.json", "w") as out:
        merged.save_to_disk(out)


def run_steps(
    steps: list[PipelineStep],
    *,
    tasks: int,
    logging_dir: Path,
    options: RunOptions | None = None,
    desc: str = "build",
) -> None:
    """Run ``steps`` as ``tasks`` tasks; raise if any task did not complete (on Slurm: submit them
    and wait for them)."""
    options = options or RunOptions()
    options.check()
    if options.executor == "slurm":
        from stackcoder.data.slurm import submit

        wait = replace(options, slurm=replace(options.slurm, wait=True))
        submit([Pass(logging_dir.name, steps, tasks)], logs=logging_dir.parent, options=wait, title=desc)
        return
    logging_dir.mkdir(parents=True, exist_ok=True)
    workers = options.workers_for(tasks)
    runner = _make(options.executor, steps, tasks, workers, logging_dir, options.ray_address)
    stop = threading.Event()
    watcher = None
    if options.progress:
        watcher = threading.Thread(target=_watch, args=(logging_dir, tasks, stop, desc), daemon=True)
        watcher.start()
    try:
        runner.run()
    finally:
        stop.set()
        if watcher:
            watcher.join()
    missing = runner.get_incomplete_ranks(range(tasks), skip_completed=True)
    if missing:
        logs = logging_dir / "logs"
        raise UserError(
            f"{len(missing)} of {tasks} tasks did not complete (first: {missing[0]}); "
            f"see {logs}/task_{missing[0]:05d}.log. Rerun the same command to resume."
        )
    logger.debug(f"{tasks} tasks complete")
