"""`stackcoder train --slurm-nodes`: the sbatch script (srun, one torchrun per node, a c10d rendezvous
on the first node) and, on a live cluster (skipped with the reason where none answers), two steps
with two gloo processes on one node, then a resubmission that resumes from the newest checkpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from stackcoder import slurm
from stackcoder.cli import main
from stackcoder.slurm import SlurmOptions
from stackcoder.train.slurm import TrainJob, script

NO_SLURM = slurm.available()


def test_the_script_starts_one_torchrun_per_node_at_one_rendezvous(tmp_path):
    job = TrainJob(
        nodes=4,
        gpus_per_node=8,
        options=SlurmOptions(cpus_per_task=None, mem_per_cpu=None, time="2-00:00:00"),
    )
    text = script(job, ["--output", "runs/x", "--config", "my run.toml"], tmp_path / "x", Path("/work"))
    for line in (
        "#SBATCH --nodes=4",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --gpus-per-node=8",
        "#SBATCH --cpus-per-task=8",  # one per process unless asked
        "#SBATCH --time=2-00:00:00",
        "#SBATCH --chdir=/work",
        "#SBATCH --requeue",
        '--nnodes="$SLURM_JOB_NUM_NODES" --nproc-per-node=8',
        '--rdzv-backend=c10d --rdzv-endpoint="$head:$port" --rdzv-id="$SLURM_JOB_ID"',
        "-m stackcoder train --output runs/x --config 'my run.toml'",
    ):
        assert line in text, line
    assert "mem-per-cpu" not in text  # left to the cluster unless asked


def losses(run: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


@pytest.mark.slow
@pytest.mark.skipif(NO_SLURM is not None, reason=f"no Slurm cluster: {NO_SLURM}")
def test_two_steps_through_sbatch_then_a_resubmission_resumes(tokens, tmp_path, capsys):
    run = tmp_path / "run"
    cmd = ["train", "--preset", "debug", "--data", str(tokens), "--max-steps", "2", "--save-every", "1"]
    cmd += ["--output", str(run), "--slurm-nodes", "1", "--nproc-per-node", "2", "--wait"]
    assert main(cmd) == 0
    assert "done: step 2" in capsys.readouterr().out
    assert json.loads((run / "config.json").read_text())["world_size"] == 2  # two gloo processes
    assert (run / "model" / "model.safetensors").is_file()
    whole = losses(run)
    assert sorted(whole) == [1, 2]

    # as if the job had been cut short after step 1's checkpoint: the same command resumes from it
    shutil.rmtree(run / "checkpoints" / "step-00000002")
    shutil.rmtree(run / "model")
    assert main(cmd) == 0
    jobs = (run / "slurm" / "jobs.txt").read_text().split()
    assert len(jobs) == 2
    assert "resuming from step-00000001" in (run / "slurm" / f"{jobs[1]}.out").read_text()
    assert losses(run) == whole and (run / "model" / "model.safetensors").is_file()
