"""`--executor slurm` on the data verbs: the run flags every datatrove verb shares, the status of a
submission read from its manifest, and, on a live cluster (`sudo scripts/slurm-cluster.sh start`;
skipped with the reason where none answers), a build of demo repositories with one task killed by
`scancel`, rerun, and then tokenized and indexed, each equal to the local executor's output."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from stackcoder import slurm
from stackcoder.cli import make_parser
from stackcoder.cli.run_flags import run_options
from stackcoder.data.executor import RunOptions
from stackcoder.data.slurm import follow, format_status, pass_status
from stackcoder.errors import UserError
from stackcoder.slurm import SlurmOptions

FIXTURE_TOKENIZER = Path(__file__).parents[1] / "fixtures" / "model"
DEMO_REPOS = [  # small ones of every kind: npm and PyPI tarballs, a zip, a Debian Go source tree
    "substack__jsonify-0.0.0.tgz",
    "vercel__ms-2.1.3.tgz",
    "pallets__markupsafe-2.1.5.tar.gz",
    "benjaminp__six-1.16.0.tar.gz",
    "mattn__go-isatty-0.0.17-1",
    "pypi__simplegeneric-0.8.1.zip",
]


@pytest.mark.parametrize(
    "verb",
    [["build", "src", "-o", "out"], ["tokenize", "ds", "-t", "tok"], ["index", "build", "ds", "-o", "ix"]],
)
def test_the_three_verbs_share_their_run_flags(verb):
    parser = make_parser()
    defaults = run_options(parser.parse_args(verb))
    assert defaults == RunOptions(progress=defaults.progress)  # argparse's defaults are the dataclass's
    for quiet in ("-q", "--quiet", "--no-progress"):  # the old spellings of each verb still work
        assert run_options(parser.parse_args([*verb, quiet])).progress is False
    args = parser.parse_args(
        [
            *verb,
            *("--executor", "slurm", "-w", "3", "--partition", "cpu", "--time", "1:00:00"),
            *(
                "--cpus-per-task",
                "2",
                "--mem-per-cpu",
                "4G",
                "--qos",
                "low",
                "--wait",
                "--tasks-per-job",
                "4",
            ),
            *("--sbatch-arg", "account=bigcode", "--sbatch-arg=--exclusive", "--slurm-logs", "/tmp/sl"),
        ]
    )
    got = run_options(args)
    assert (got.executor, got.workers) == ("slurm", 3)
    assert got.slurm.directives() == {
        "cpus-per-task": "2",
        "mem-per-cpu": "4G",
        "partition": "cpu",
        "time": "1:00:00",
        "qos": "low",
        "account": "bigcode",
        "exclusive": "",
    }
    assert got.slurm.wait and got.slurm.logs == "/tmp/sl" and got.slurm.tasks_per_job == 4


def test_bad_run_flags_are_one_line_errors():
    with pytest.raises(UserError, match="--workers"):
        RunOptions(workers=0).check()
    with pytest.raises(UserError, match="--mem-per-cpu"):
        RunOptions(executor="slurm", slurm=SlurmOptions(mem_per_cpu="lots")).check()
    with pytest.raises(UserError, match="--sbatch-arg"):
        slurm.parse_sbatch_args(["=x"])


def test_status_counts_tasks_and_names_the_logs_of_failed_ones(tmp_path):
    """A manifest as `submit` writes it, completion markers, Slurm output files and a queue: what
    `stackcoder status` and `--wait` see after a task of the first pass was cancelled while running."""
    logs, out = tmp_path / "logs", tmp_path / "slurm-out"
    for name, done in (("filter", [0, 2]), ("final", [])):
        (logs / name / "completions").mkdir(parents=True)
        for rank in done:
            (logs / name / "completions" / f"{rank:05d}").touch()
    (logs / "filter" / "logs").mkdir()
    (logs / "filter" / "logs" / "task_00001.log").write_text("started\n")
    out.mkdir()
    for name in ("7_0", "7_1", "7_2"):  # every filter element started; final's never did
        (out / f"{name}.out").write_text("")
    manifest = {
        "passes": [
            {"name": "filter", "tasks": 4, "jobs": ["7"], "array_size": 1001, "ranks": [0, 1, 2, 3],
             "slurm_logs": str(out)},
            {"name": "final", "tasks": 2, "jobs": ["8"], "array_size": 1001, "ranks": [0, 1],
             "slurm_logs": str(out)},
        ]
    }  # fmt: skip
    running = pass_status(logs, manifest, {("7", 3): "running", ("8", 0): "pending", ("8", 1): "pending"})
    assert [(s.done, s.running, s.pending, [r for r, _ in s.failed], s.not_run) for s in running] == [
        (2, 1, 0, [1], 0),
        (0, 0, 2, [], 0),
    ]
    (logs / "filter" / "completions" / "00003").touch()
    stopped = pass_status(logs, manifest, {})  # the queue is empty: final was cancelled unstarted
    assert [(s.done, len(s.failed), s.not_run) for s in stopped] == [(3, 1, 0), (0, 0, 2)]
    text = format_status(logs, stopped)
    assert (
        f"filter task 1: {logs / 'filter' / 'logs' / 'task_00001.log'} (Slurm output: {out / '7_1.out'})"
        in text
    )
    assert "rerun the same command" in text


# ---- on a live cluster -------------------------------------------------------------------------

NO_SLURM = slurm.available()
on_slurm = pytest.mark.skipif(NO_SLURM is not None, reason=f"no Slurm cluster: {NO_SLURM}")


def tree(root: Path) -> dict[str, bytes]:
    """Every output file, byte for byte; the logs (and paths recorded in summaries) aside."""
    skip = {"logs", "stats.json", "tokens.json", "index.json"}
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not skip & set(p.relative_to(root).parts)
    }


def without(d: dict, *keys: str) -> dict:
    return {k: v for k, v in d.items() if k not in keys}


def same_but_paths(a: dict, a_root: Path, b: dict, b_root: Path) -> bool:
    """Summaries (tokens.json, index.json) equal once each names its own dataset folder the same."""
    return json.dumps(a).replace(str(a_root), "DATASET") == json.dumps(b).replace(str(b_root), "DATASET")


def _slurm(wait: bool, tasks_per_job: int | None = None) -> RunOptions:
    return RunOptions(
        executor="slurm", progress=False, slurm=SlurmOptions(wait=wait, tasks_per_job=tasks_per_job)
    )


def _cancel_a_running_filter_task(logs: Path) -> int:
    """scancel one element of the filter array once its task has started; returns its rank."""
    filt = json.loads((logs / "slurm.json").read_text())["passes"][0]
    job = filt["jobs"][0]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for (j, index), state in slurm.queue([job]).items():
            rank = filt["ranks"][index] if j == job and index is not None else None
            # running, and its task log begun: datatrove is at work on it
            if state == "running" and (logs / "filter" / "logs" / f"task_{rank:05d}.log").exists():
                subprocess.run(["scancel", f"{job}_{index}"], check=True)
                return rank
        time.sleep(0.1)
    raise AssertionError("no filter task started within two minutes")


@on_slurm
@pytest.mark.slow
def test_build_tokenize_and_index_on_slurm_equal_the_local_executor(demo_corpus, tmp_path):
    pytest.importorskip("licensedcode", reason="scancode-toolkit is not installed")
    from stackcoder.cli import main
    from stackcoder.data.build import BuildConfig, build
    from stackcoder.data.options import TokenizeConfig
    from stackcoder.data.tokenize import tokenize
    from stackcoder.index.build import build_index
    from stackcoder.index.config import IndexConfig

    sources = [str(demo_corpus / "repos" / name) for name in DEMO_REPOS]

    def config(name: str, run: RunOptions) -> BuildConfig:
        return BuildConfig(sources=sources, output=tmp_path / name, tasks=2, run=run)

    local = build(config("local", RunOptions(workers=2, progress=False)))

    # submitted, not waited for; one filter task killed while it runs: the passes after it are cancelled
    assert build(config("slurm", _slurm(wait=False, tasks_per_job=1))).stats is None
    logs = tmp_path / "slurm" / "logs"
    killed = _cancel_a_running_filter_task(logs)
    with pytest.raises(UserError, match=f"filter task {killed}: .*task_{killed:05d}.log"):
        follow(logs, progress=False)
    assert not (tmp_path / "slurm" / "stats.json").exists()
    assert main(["status", str(tmp_path / "slurm")]) == 0
    done_before = {int(p.name) for p in (logs / "filter" / "completions").iterdir()}
    assert killed not in done_before

    # the same command again resubmits only what did not complete, and waits for it; with two tasks
    # per array element, one process runs both tasks of a pass (their stats must stay apart)
    remote = build(config("slurm", _slurm(wait=True, tasks_per_job=2)))
    manifest = json.loads((logs / "slurm.json").read_text())
    assert sorted(manifest["passes"][0]["ranks"]) == sorted(set(range(2)) - done_before)
    assert "#SBATCH --array=0-0\n" in (logs / "final" / "launch_script.slurm").read_text()  # 2 tasks, 1 job
    assert tree(remote.output) == tree(local.output) and "files/00000.parquet" in tree(local.output)
    strip = [without(s, "time_s") for s in local.stats["stages"]]
    assert [without(s, "time_s") for s in remote.stats["stages"]] == strip
    assert without(remote.stats, "stages") == without(local.stats, "stages")
    assert not list(logs.rglob("executor.pik"))  # the pickled steps (opt-out list) are gone

    def tokens(dataset: Path, run: RunOptions) -> dict:
        return tokenize(TokenizeConfig(str(dataset), str(FIXTURE_TOKENIZER), valid_fraction=0.2, run=run))

    t_local, t_slurm = tokens(local.output, RunOptions(progress=False)), tokens(remote.output, _slurm(True))
    assert tree(remote.output / "tokens") == tree(local.output / "tokens")
    assert any(k.endswith(".ds") for k in tree(local.output / "tokens"))
    assert same_but_paths(t_slurm, remote.output, t_local, local.output)

    def index(dataset: Path, run: RunOptions) -> dict:
        return build_index(IndexConfig(str(dataset), str(dataset / "index"), shards=2, run=run))

    i_local, i_slurm = index(local.output, RunOptions(progress=False)), index(remote.output, _slurm(True))
    portrait = tree(remote.output / "index" / "portrait")
    assert portrait == tree(local.output / "index" / "portrait") and i_slurm["shards"] == 2
    assert same_but_paths(i_slurm, remote.output, i_local, local.output)
