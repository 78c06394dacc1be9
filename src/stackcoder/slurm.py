"""What every Slurm job of stackcoder shares: the settings a user gives (``SlurmOptions``), the
``#SBATCH`` directives made from them, submitting a script, and asking the queue about jobs.

Two kinds of job use it: the data verbs' passes (``data/slurm.py``: one job array per pass, through
datatrove's ``SlurmPipelineExecutor``) and training (``train/slurm.py``: one ``srun torchrun`` job).
Only the commands every Slurm installation has are used (``sbatch``, ``squeue``, ``scancel``):
``sacct`` needs the accounting daemon, which small clusters (and CI's one-node cluster) often lack.
"""

from __future__ import annotations

import getpass
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from stackcoder.errors import UserError

# job states in which a job (or array element) still holds or waits for a place in the queue
QUEUED = {"PD": "pending", "CF": "pending", "RQ": "pending", "RF": "pending", "RH": "pending", "S": "pending"}
RUNNING = {"R": "running", "CG": "running", "SO": "running", "SI": "running", "RS": "running"}
_SIZE = re.compile(r"^\d+[KMGT]?$")


@dataclass
class SlurmOptions:
    """``--partition --time --cpus-per-task --mem-per-cpu --qos --sbatch-arg --slurm-logs --wait``.

    The defaults fit a laptop-sized test on a one-node cluster (``scripts/slurm-cluster.sh``): the
    cluster's default partition, no time limit of our own, one CPU and 2.5 GB per task (ScanCode's
    license index alone is ~1.4 GB per process). docs/scaling.md gives values for a real cluster."""

    partition: str | None = None
    time: str | None = None  # sbatch's formats: MINUTES, HH:MM:SS, D-HH:MM:SS
    cpus_per_task: int | None = 1  # None: the cluster's default
    mem_per_cpu: str | None = "2500M"  # sbatch's size: 2500M, 4G; None: the cluster's default
    qos: str | None = None
    sbatch_args: dict[str, str] = field(default_factory=dict)  # --sbatch-arg KEY=VALUE, KEY for a flag
    logs: str | None = None  # where Slurm writes each job's output (default: beside the run's logs)
    # data verbs: tasks one array element runs one after the other in one process; None: as many as
    # make the array no larger than the CPUs it can use (slots())
    tasks_per_job: int | None = None
    wait: bool = False  # follow the jobs until they end, instead of returning once submitted

    def check(self) -> None:
        if self.cpus_per_task is not None and self.cpus_per_task < 1:
            raise UserError("--cpus-per-task must be at least 1")
        if self.tasks_per_job is not None and self.tasks_per_job < 1:
            raise UserError("--tasks-per-job must be at least 1")
        if self.mem_per_cpu is not None and not _SIZE.match(self.mem_per_cpu):
            raise UserError(f"--mem-per-cpu {self.mem_per_cpu!r}: give a size such as 2500M or 4G")

    def directives(self) -> dict[str, str]:
        """The ``#SBATCH`` lines these options ask for (``--sbatch-arg`` last, so it can override)."""
        out = {}
        for key, value in (
            ("cpus-per-task", self.cpus_per_task and str(self.cpus_per_task)),
            ("mem-per-cpu", self.mem_per_cpu),
            ("partition", self.partition),
            ("time", self.time),
            ("qos", self.qos),
        ):
            if value:
                out[key] = value
        return out | self.sbatch_args


def partition_cpus(partition: str | None) -> int | None:
    """The CPUs of ``partition`` (the default partition when None), or None when sinfo cannot say."""
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%P %C"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    total = 0
    for line in out.stdout.splitlines():
        name, _, cpus = line.partition(" ")  # CPUs as allocated/idle/other/total
        if (name.rstrip("*") == partition) if partition else name.endswith("*"):
            total += int(cpus.split("/")[-1]) if cpus.count("/") == 3 else 0
    return total or None


def parse_sbatch_args(specs: list[str]) -> dict[str, str]:
    """``["account=bigcode", "--exclusive"]`` -> ``{"account": "bigcode", "exclusive": ""}``."""
    out: dict[str, str] = {}
    for spec in specs:
        key, _, value = spec.lstrip("-").partition("=")
        if not key or not re.match(r"^[a-z][a-z0-9-]*$", key):
            raise UserError(
                f"--sbatch-arg {spec!r}: expected an sbatch option as KEY=VALUE, e.g. account=myacct"
            )
        out[key] = value
    return out


def script_header(directives: dict[str, str]) -> str:
    lines = [f"#SBATCH --{k}={v}" if v else f"#SBATCH --{k}" for k, v in directives.items()]
    return "#!/bin/bash\n" + "\n".join(lines) + "\n"


def env_command() -> str:
    """Put this Python's scripts (``stackcoder``, ``torchrun``, ``launch_pickled_pipeline``) first on
    the job's PATH. The job runs them from the same path, so on a cluster the environment must sit
    on a filesystem every node mounts at the same place (as the data does)."""
    return f"export PATH={shlex.quote(str(Path(sys.executable).parent))}:$PATH"


def require_slurm() -> None:
    for tool in ("sbatch", "squeue"):
        if shutil.which(tool) is None:
            raise UserError(
                f"--executor slurm needs Slurm's `{tool}` on PATH (run on a login node; on one machine: "
                "sudo scripts/slurm-cluster.sh start)"
            )


def available(timeout: float = 10) -> str | None:
    """None when a Slurm controller answers with a usable node, else why not (for test skips)."""
    if shutil.which("sinfo") is None:
        return (
            "Slurm is not installed (no sinfo); start a one-node cluster: sudo scripts/slurm-cluster.sh start"
        )
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer"
    if out.returncode != 0:
        return f"sinfo failed: {out.stderr.strip() or out.returncode}"
    if not re.search(r"^(idle|mix|alloc|comp)", out.stdout, re.M):
        return f"no usable Slurm node (sinfo: {' '.join(out.stdout.split()) or 'none'})"
    return None


def sbatch(script: str, *args: str) -> str:
    """Submit ``script``; returns the job id."""
    with tempfile.NamedTemporaryFile("w", suffix=".sbatch") as f:
        f.write(script)
        f.flush()
        out = subprocess.run(["sbatch", "--parsable", *args, f.name], capture_output=True, text=True)
    if out.returncode != 0:
        raise UserError(f"sbatch refused the job: {out.stderr.strip()}")
    return out.stdout.strip().split(";")[0]


def queue(job_ids: list[str]) -> dict[tuple[str, int | None], str]:
    """The queue's state of our jobs' elements: ``{(job id, array index or None): "pending"|"running"}``;
    a job that is not there has ended (or never started). Raises ``OSError`` when squeue fails, so
    that a caller polling the queue can tell "gone" from "unknown"."""
    if not job_ids:
        return {}
    out = subprocess.run(
        # one line per array element: the array's job id (%F), the element's index (%K), its state
        ["squeue", "-h", "-r", "-u", getpass.getuser(), "-o", "%F %K %t"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if out.returncode != 0:
        raise OSError(f"squeue failed: {out.stderr.strip()}")
    wanted, states = set(job_ids), {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) != 3 or parts[0] not in wanted:
            continue
        job, index, state = parts
        states[(job, int(index) if index.isdigit() else None)] = QUEUED.get(state) or RUNNING.get(
            state, "running"
        )
    return states


def cancel(job_ids: list[str]) -> None:
    if job_ids:
        subprocess.run(["scancel", *job_ids], capture_output=True)
