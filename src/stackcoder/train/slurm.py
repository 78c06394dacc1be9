"""``stackcoder train ... --slurm-nodes N``: the same training command as an sbatch script that runs
one ``torchrun`` per node under ``srun``, all of them meeting at a c10d rendezvous on the
allocation's first node (docs/training.md, "Distributed"; docs/scaling.md).

The script is written to ``OUTPUT/slurm/train.sbatch`` and submitted. It is self-contained:
``sbatch OUTPUT/slurm/train.sbatch`` again (after a time limit, a node failure, a cancel) resumes
from the newest checkpoint, because the command it runs is the one that resumes when rerun (the
trainer's own rule). ``--requeue`` lets Slurm do the same by itself after a node failure. Each
job's output goes to ``OUTPUT/slurm/<job id>.out`` and its exit status to ``<job id>.exit``, so
``--wait`` can tell success from failure without ``sacct``.
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from stackcoder import slurm
from stackcoder.errors import UserError

SLURM_DIR = "slurm"  # under the run's output; the trainer's --overwrite leaves it alone
SCRIPT = "train.sbatch"
JOBS = "jobs.txt"  # every job id submitted for this output, newest last


@dataclass
class TrainJob:
    """Where a training run goes on Slurm: ``nodes`` nodes of ``nproc_per_node`` processes each."""

    nodes: int
    gpus_per_node: int = 0
    nproc_per_node: int | None = None  # default: one per GPU, else one
    cpus_per_node: int | None = None  # default: one per process
    # cpus_per_task is cpus_per_node's flag; memory: the cluster's default unless asked
    options: slurm.SlurmOptions = field(
        default_factory=lambda: slurm.SlurmOptions(cpus_per_task=None, mem_per_cpu=None)
    )

    @property
    def procs(self) -> int:
        return self.nproc_per_node or self.gpus_per_node or 1

    def check(self) -> None:
        if self.nodes < 1:
            raise UserError("--slurm-nodes must be at least 1")
        if self.gpus_per_node < 0 or self.procs < 1:
            raise UserError("--gpus-per-node must be at least 0 and --nproc-per-node at least 1")
        self.options.check()


def script(job: TrainJob, train_args: list[str], output: Path, workdir: Path) -> str:
    """The sbatch script: ``srun`` starts one ``torchrun`` per node; torchrun's c10d rendezvous on
    the first node gives every process its rank (no node rank to compute by hand)."""
    logs = Path(job.options.logs).resolve() if job.options.logs else (output / SLURM_DIR).resolve()
    cpus = job.cpus_per_node or job.procs
    directives = {
        "job-name": f"stackcoder-train-{output.name}",
        "nodes": str(job.nodes),
        "ntasks-per-node": "1",  # one torchrun per node; it starts the node's processes
        **({"gpus-per-node": str(job.gpus_per_node)} if job.gpus_per_node else {}),
        "output": str(logs / "%j.out"),
        "chdir": str(workdir),  # relative paths in the command mean what they meant when submitted
        "requeue": "",  # after a node failure Slurm runs it again, and it resumes
        "open-mode": "append",  # a requeued job adds to its log instead of replacing it
        **replace(job.options, cpus_per_task=cpus).directives(),
    }
    command = shlex.join(["-m", "stackcoder", "train", *train_args])
    again = shlex.quote(str(output / SLURM_DIR / SCRIPT))
    return (
        slurm.script_header(directives)
        + f"""# written by `stackcoder train --slurm-nodes`: `sbatch {again}` resumes the run
# from its newest checkpoint
{slurm.env_command()}
head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
port=$((20000 + SLURM_JOB_ID % 20000))  # two jobs sharing a node do not share a rendezvous
srun --ntasks-per-node=1 --cpus-per-task={cpus} --kill-on-bad-exit=1 \\
    torchrun --nnodes="$SLURM_JOB_NUM_NODES" --nproc-per-node={job.procs} \\
    --rdzv-backend=c10d --rdzv-endpoint="$head:$port" --rdzv-id="$SLURM_JOB_ID" \\
    {command}
status=$?
echo "$status" > {shlex.quote(str(logs))}/"$SLURM_JOB_ID.exit"
exit "$status"
"""
    )


def submit(job: TrainJob, train_args: list[str], output: Path) -> tuple[str, bool]:
    """Write the script and submit it: (job id, True). While a job of this output is still queued,
    nothing is submitted (two jobs would write the same checkpoints): (its id, False)."""
    job.check()
    slurm.require_slurm()
    folder = output / SLURM_DIR
    folder.mkdir(parents=True, exist_ok=True)
    if job.options.logs:
        Path(job.options.logs).mkdir(parents=True, exist_ok=True)
    if (queued := last_job(output)) and slurm.queue([queued]):
        return queued, False
    path = folder / SCRIPT
    path.write_text(script(job, train_args, output, Path(os.getcwd())))
    job_id = slurm.sbatch(path.read_text())
    with open(folder / JOBS, "a") as f:
        f.write(job_id + "\n")
    return job_id, True


def last_job(output: Path) -> str | None:
    jobs = output / SLURM_DIR / JOBS
    ids = jobs.read_text().split() if jobs.is_file() else []
    return ids[-1] if ids else None


def log_of(output: Path, job_id: str, logs: str | None = None) -> Path:
    return (Path(logs) if logs else output / SLURM_DIR) / f"{job_id}.out"


def wait(output: Path, job_id: str, logs: str | None = None, poll_s: float = 2.0) -> str:
    """Wait for the job to leave the queue; its log's last lines when it succeeded, else UserError."""
    while True:
        try:
            if not slurm.queue([job_id]):
                break
        except OSError:  # a busy controller: ask again
            pass
        time.sleep(poll_s)
    log = log_of(output, job_id, logs)
    exit_file = log.with_suffix(".exit")
    status = exit_file.read_text().strip() if exit_file.is_file() else None
    if status != "0":
        how = f"exit status {status}" if status else "ended without finishing: cancelled or out of time"
        raise UserError(
            f"training job {job_id} {how}; see {log}. Submitting it again resumes from the newest checkpoint"
        )
    return log.read_text(errors="replace") if log.is_file() else ""
