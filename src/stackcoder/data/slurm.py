"""The data verbs' passes on Slurm: one job array per pass through datatrove's
``SlurmPipelineExecutor``, chained with ``afterok`` dependencies and submitted at once, then a
one-task ``finish`` job that writes what needs every pass (stats and card, ``tokens.json``,
``index.json``). ``stackcoder status DIR`` and ``--wait`` read the queue and the completion markers.

Why submission-time chaining works for our passes: every pass's shape is known before the first
one runs. A build's task count comes from the sources, its dedup buckets from the sources' bytes
(``pipeline.BYTES_PER_DEDUP_BUCKET``), and the passes read their inputs when a task starts, not
when the pass is made. What does depend on a finished build (``tokenize``: one task per
documents file and the held-out repositories; ``index build``: shards from the files' bytes) is a
separate verb, run once the build is complete (``build --wait``, or after ``stackcoder status``).

A rerun of the same command submits only what is not complete: datatrove's executor submits the
incomplete ranks of each pass (``ranks_to_run.json`` maps array index to rank), a complete pass
is skipped, and each job depends on the newest submitted one before it. While an earlier
submission is still queued, the rerun follows it instead (rewriting ``ranks_to_run.json`` under
its pending elements would give them other ranks). ``--kill-on-invalid-dep`` ends the passes
after a failed one at once, so "nothing queued" means the chain is over.

``logs/slurm.json`` records each submission: the passes in order, their tasks, job ids and the
rank of every array element, and where Slurm writes each element's output.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path

from datatrove.executor.slurm import SlurmPipelineExecutor
from datatrove.pipeline.base import PipelineStep
from tqdm import tqdm

from stackcoder import slurm
from stackcoder.data.executor import Pass, RunOptions, merge_stats
from stackcoder.errors import UserError

MANIFEST = "slurm.json"
FINISH = "finish"
POLL_S = 2.0


class StackcoderSlurmExecutor(SlurmPipelineExecutor):
    """datatrove's executor with our sbatch directives (SlurmOptions; no directive for what the
    user left to the cluster), every job id it submits recorded, and neither ``executor.json``
    (it would list every source and the opt-out patterns) nor datatrove's extra ``merge_stats``
    job per pass (our reports read the per-task stats)."""

    def __init__(self, *args, options: slurm.SlurmOptions, **kwargs):
        self.submitted: list[str] = []
        super().__init__(*args, job_id_retriever=self._record, **kwargs)
        self.options = options

    def _record(self, sbatch_output: str) -> str:
        job_id = sbatch_output.split()[-1]
        self.submitted.append(job_id)
        return job_id

    def get_sbatch_args(self, max_array: int = 1) -> dict:
        args = super().get_sbatch_args(max_array)
        for key in ("partition", "time", "qos", "mem-per-cpu"):
            args.pop(key, None)
        # the passes after a failed one are cancelled at once instead of pending forever
        return args | {"kill-on-invalid-dep": "yes"} | self.options.directives()

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1):
        """Each task on a fresh copy of the steps, as the local executor runs them: with
        ``--tasks-per-job`` one process runs several tasks, and a step's counters (and any state it
        keeps while running) must not carry over into the next task's stats."""
        pipeline = self.pipeline
        self.pipeline = deepcopy(pipeline)
        try:
            return super()._run_for_rank(rank, local_rank, node_rank)
        finally:
            self.pipeline = pipeline

    def save_executor_as_json(self, indent: int = 4) -> None:
        """Not written, as for the local executor."""

    def launch_merge_stats(self) -> None:
        """Not launched: our reports sum the per-task stats themselves."""


class Finish(PipelineStep):
    """The last job of a submission: each pass's merged ``stats.json`` (as the local executor writes
    it), ``fn()`` (stats, card, summary files), then the pickled executors are deleted: they hold
    every step's settings, opt-out patterns included, which no output may show, and are only needed
    while tasks may still start."""

    name = "🏁 Finish"
    type = "🏁 - FINISH"

    def __init__(self, fn: Callable[[], object] | None, passes: list[tuple[str, int]], pickles: list[str]):
        super().__init__()
        self.fn, self.passes, self.pickles = fn, passes, pickles

    def run(self, data, rank: int = 0, world_size: int = 1):
        for logging_dir, tasks in self.passes:
            merge_stats(Path(logging_dir), tasks)
        if self.fn is not None:
            self.fn()
        for p in self.pickles:
            Path(p).unlink(missing_ok=True)
        return
        yield


# ---- submission ------------------------------------------------------------------------------


def submit(
    passes: list[Pass],
    *,
    logs: Path,
    options: RunOptions,
    finish: Callable[[], object] | None,
    title: str,
) -> bool:
    """Submit what is not complete of ``passes`` and a finish job; follow them with ``--wait``.
    True when everything is complete on return."""
    slurm.require_slurm()
    logs.mkdir(parents=True, exist_ok=True)
    previous = read_manifest(logs)
    if previous is not None and _queued(previous):
        # still at work: submitting again would put a second set of jobs on the same tasks
        if not options.slurm.wait:
            print(format_status(logs), file=sys.stderr)
            return False
        follow(logs, options.progress)  # then submit whatever it did not cover (normally nothing)
    pickles = [str(logs / name / "executor.pik") for name in [*(p.name for p in passes), FINISH]]
    merged = [(str(logs / p.name), p.tasks) for p in passes]
    chain = [*passes, Pass(FINISH, [Finish(finish, merged, pickles)], 1)]
    records, after = [], None
    for p in chain:
        ex = StackcoderSlurmExecutor(
            p.steps,
            tasks=p.tasks,
            time=None,
            partition=None,
            cpus_per_task=options.slurm.cpus_per_task,
            workers=options.workers or -1,
            tasks_per_job=per_job(p.tasks, options),
            job_name=f"stackcoder-{title}-{p.name}".replace(" ", "-"),
            qos=None,
            env_command=slurm.env_command(),
            depends_job_id=after,
            logging_dir=str(logs / p.name),
            slurm_logs_folder=str(Path(options.slurm.logs) / p.name) if options.slurm.logs else None,
            options=options.slurm,
        )
        try:
            ex.launch_job()
        except subprocess.CalledProcessError:
            # sbatch printed why; take back what this submission queued, so no orphan runs on
            slurm.cancel([j for r in records for j in r["jobs"]] + ex.submitted)
            raise UserError(
                f"sbatch refused the {p.name} pass (its message is above); nothing of this submission "
                "stays queued. Check --partition, --time, --qos and --sbatch-arg"
            ) from None
        ranks = json.loads((logs / p.name / "ranks_to_run.json").read_text()) if ex.submitted else []
        records.append(
            {
                "name": p.name,
                "tasks": p.tasks,
                "jobs": ex.submitted,  # datatrove splits an array larger than max_array_size
                "array_size": ex.max_array_size,
                "tasks_per_job": ex.tasks_per_job,
                # array element e (over the jobs in order) runs ranks[e * tasks_per_job:][:tasks_per_job]
                "ranks": ranks,
                "slurm_logs": str(Path(ex.slurm_logs_folder).resolve()),
            }
        )
        after = ex.submitted[-1] if ex.submitted else after
        # written as it grows: if this process dies mid-way, a rerun still sees what is queued
        manifest = {"title": title, "submitted": time.time(), "passes": records}
        (logs / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    if not options.slurm.wait:
        return _complete(logs, manifest)
    return follow(logs, options.progress)


def per_job(tasks: int, options: RunOptions) -> int:
    """Tasks per array element: ``--tasks-per-job``, else as many as keep the array no larger than
    the tasks that can run at once (the partition's CPUs per ``--cpus-per-task``, or ``--workers``).
    Every element is a fresh process that loads the steps again (ScanCode's index: ~5 s), so on a
    small cluster one task per element mostly waits for that (docs/benchmarks.md: 32 tasks on 2
    CPUs, 600 s per build with one, 68 s with 16); on a cluster with a CPU per task it is one."""
    if options.slurm.tasks_per_job:
        return options.slurm.tasks_per_job
    cpus = slurm.partition_cpus(options.slurm.partition)
    slots = cpus // (options.slurm.cpus_per_task or 1) if cpus else tasks
    if options.workers:
        slots = min(slots, options.workers)
    return -(-tasks // max(1, slots))


def read_manifest(logs: Path) -> dict | None:
    path = logs / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else None


def _queued(manifest: dict) -> bool:
    jobs = [j for p in manifest["passes"] for j in p["jobs"]]
    try:
        return bool(slurm.queue(jobs))
    except OSError as e:
        raise UserError(f"{e}; is the Slurm controller up (sinfo)?") from None


def _complete(logs: Path, manifest: dict) -> bool:
    return all(s.done == s.tasks for s in pass_status(logs, manifest, {}))


def refuse_if_queued(logs: Path) -> None:
    """Before an output folder is deleted: not while jobs of it are queued or running."""
    manifest = read_manifest(logs)
    if manifest is None:
        return
    jobs = [j for p in manifest["passes"] for j in p["jobs"]]
    try:
        queued = slurm.queue(jobs)
    except (OSError, FileNotFoundError):
        return
    if queued:
        ids = " ".join(sorted({job for job, _ in queued}))
        raise UserError(
            f"Slurm jobs of this output are still queued or running; cancel them first: scancel {ids}"
        )


# ---- status ----------------------------------------------------------------------------------


@dataclass
class PassStatus:
    name: str
    tasks: int
    done: int = 0
    running: int = 0
    pending: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)  # (rank, where its logs are)
    not_run: int = 0  # not started, and no longer queued: a pass before it failed, or cancelled

    @property
    def queued(self) -> int:
        return self.running + self.pending


def pass_status(logs: Path, manifest: dict, queue: dict[tuple[str, int | None], str]) -> list[PassStatus]:
    """Per pass: tasks done (completion markers), running and pending (the queue), failed (started,
    per its Slurm output file, and neither done nor queued) and not run."""
    out = []
    for p in manifest["passes"]:
        s = PassStatus(p["name"], p["tasks"])
        done = {int(f.name) for f in (logs / p["name"] / "completions").glob("*") if f.name.isdigit()}
        s.done = len(done & set(range(p["tasks"])))
        where = {}  # rank -> (job, array index)
        for i, rank in enumerate(p["ranks"]):
            element = i // p.get("tasks_per_job", 1)
            job = p["jobs"][min(element // p["array_size"], len(p["jobs"]) - 1)]
            where[rank] = (job, element % p["array_size"])
        for rank in sorted(set(range(p["tasks"])) - done):
            if rank not in where:  # submitted by no job we know of (an older manifest's)
                s.not_run += 1
                continue
            job, index = where[rank]
            state = queue.get((job, index)) or queue.get((job, None))
            if state == "running":
                s.running += 1
            elif state == "pending":
                s.pending += 1
            elif (slurm_out := Path(p["slurm_logs"]) / f"{job}_{index}.out").exists():
                # datatrove's log of the task says what the code did; Slurm's output, what Slurm did
                # (cancelled, out of memory, time limit)
                task_log = logs / p["name"] / "logs" / f"task_{rank:05d}.log"
                seen = f"{task_log} (Slurm output: {slurm_out})" if task_log.exists() else str(slurm_out)
                s.failed.append((rank, seen))
            else:
                s.not_run += 1
        out.append(s)
    return out


def status(logs: Path) -> list[PassStatus]:
    manifest = read_manifest(logs)
    if manifest is None:
        raise UserError(f"{logs}: nothing was submitted to Slurm from here (no {MANIFEST})")
    jobs = [j for p in manifest["passes"] for j in p["jobs"]]
    return pass_status(logs, manifest, slurm.queue(jobs))


def format_status(logs: Path, statuses: list[PassStatus] | None = None) -> str:
    statuses = statuses if statuses is not None else status(logs)
    width = max(len(s.name) for s in statuses)
    lines = [f"{'pass':<{width}}  {'done':>6}  {'running':>7}  {'pending':>7}  {'failed':>6}  {'not run':>7}"]
    for s in statuses:
        lines.append(
            f"{s.name:<{width}}  {s.done:>3}/{s.tasks:<3}{s.running:>8}  {s.pending:>7}  "
            f"{len(s.failed):>6}  {s.not_run:>7}"
        )
    failed = [(s.name, rank, log) for s in statuses for rank, log in s.failed]
    for name, rank, log in failed[:20]:
        lines.append(f"failed: {name} task {rank}: {log}")
    if len(failed) > 20:
        lines.append(f"... and {len(failed) - 20} more failed tasks")
    if all(s.done == s.tasks for s in statuses):
        lines.append("complete")
    elif not any(s.queued for s in statuses):
        lines.append(
            "stopped before the end: rerun the same command to resubmit the tasks that did not complete"
        )
    return "\n".join(lines)


def follow(logs: Path, progress: bool = True, poll_s: float = POLL_S) -> bool:
    """Wait until the submission in ``logs`` is complete (True) or has stopped with tasks not done
    (``UserError`` naming each failed task's log); a progress bar per pass with ``progress``."""
    manifest = read_manifest(logs)
    if manifest is None:
        raise UserError(f"{logs}: nothing was submitted to Slurm from here (no {MANIFEST})")
    jobs = [j for p in manifest["passes"] for j in p["jobs"]]
    show = progress and sys.stderr.isatty()
    bars: dict[str, tqdm] = {}
    try:
        while True:
            try:
                queue = slurm.queue(jobs)
            except (OSError, FileNotFoundError):  # a busy controller: ask again
                time.sleep(poll_s)
                continue
            statuses = pass_status(logs, manifest, queue)
            if show:
                _draw(bars, statuses)
            if all(s.done == s.tasks for s in statuses):
                return True
            if not queue:
                # the queue may lag the completion markers by an instant: look once more
                statuses = pass_status(logs, manifest, {})
                if all(s.done == s.tasks for s in statuses):
                    return True
                raise UserError(_failure(logs, statuses))
            time.sleep(poll_s)
    finally:
        for bar in bars.values():
            bar.close()


def _draw(bars: dict[str, tqdm], statuses: list[PassStatus]) -> None:
    for s in statuses:
        if s.done == s.tasks or s.queued or s.failed:
            bar = bars.get(s.name)
            if bar is None:
                bar = bars[s.name] = tqdm(
                    total=s.tasks, desc=s.name, unit="task", file=sys.stderr, dynamic_ncols=True
                )
            bar.set_postfix_str(f"running {s.running}, failed {len(s.failed)}", refresh=False)
            bar.update(s.done - bar.n)


def _failure(logs: Path, statuses: list[PassStatus]) -> str:
    failed = [(s.name, rank, log) for s in statuses for rank, log in s.failed]
    where = "; ".join(f"{name} task {rank}: {log}" for name, rank, log in failed[:3])
    more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
    what = (
        f"{len(failed)} Slurm task(s) failed or were cancelled: {where}{more}"
        if failed
        else ("the Slurm jobs ended with tasks not done (cancelled before they started)")
    )
    return f"{what}. Rerun the same command to resubmit only the tasks that did not complete"


def logs_of(path: Path) -> Path:
    """The folder holding ``slurm.json`` for a build, tokens or index output (or that folder)."""
    for candidate in (path / "logs", path):
        if (candidate / MANIFEST).is_file():
            return candidate
    raise UserError(f"{path}: nothing was submitted to Slurm for it (no logs/{MANIFEST})")
