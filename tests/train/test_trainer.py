"""The training loop on real token shards: the loss falls, a run killed with SIGKILL and started
again gives the same losses and weights as one that was not, two data-parallel processes (DDP and
FSDP2, gloo on the CPU) give the losses of one process with the same global batch, the exported
model loads in transformers, and a second context stage starts from the first one's weights."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from stackcoder.errors import UserError
from stackcoder.train.config import apply
from stackcoder.train.presets import get_preset, load_config
from stackcoder.train.trainer import train

ROOT = Path(__file__).parents[2]


def losses(run: Path, key: str = "loss") -> dict[int, float]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r[key] for r in records if key in r}


def cli(*args: str, nproc: int = 1, **popen) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    launcher = (
        [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
        if nproc > 1
        else [sys.executable]
    )
    cmd = [*launcher, "-m", "stackcoder", "train", "--preset", "debug", "--no-progress", *args]
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen
    )


def finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    return out


def test_loss_falls_and_the_model_loads_in_transformers(tokens, tmp_path):
    cfg = apply(get_preset("debug"), {"data": {"path": str(tokens)}, "training": {"max_steps": 40}}, "test")
    result = train(cfg, tmp_path / "run", progress=False)
    curve = losses(tmp_path / "run")
    assert len(curve) == 40 and result.eval_loss is not None
    assert sum(list(curve.values())[-5:]) / 5 < list(curve.values())[0] - 0.5
    evals = list(losses(tmp_path / "run", "eval_loss").values())
    assert evals[-1] < evals[0]
    assert (tmp_path / "run" / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    transformers = pytest.importorskip("transformers")
    from stackcoder.model.hf import load_model

    ours = load_model(result.model_dir)
    theirs = transformers.Starcoder2ForCausalLM.from_pretrained(result.model_dir).eval()
    x = torch.randint(0, ours.config.vocab_size, (2, 48))
    with torch.no_grad():
        assert torch.allclose(ours(x)[0], theirs(x).logits, atol=1e-4)


@pytest.mark.parametrize("data", ["tokens", "mix_tokens"])
def test_killed_run_resumes_with_identical_losses(data, tmp_path, request):
    tokens = request.getfixturevalue(data)  # documents alone, or a mix of every kind of source
    args = [
        "--data",
        str(tokens),
        "--max-steps",
        "40",
        "--save-every",
        "4",
        "--log-every",
        "1",
        "--eval-every",
        "8",
    ]
    whole = finish(cli(*args, "--output", str(tmp_path / "whole")))
    assert "done: step 40" in whole

    run = tmp_path / "killed"
    proc = cli(*args, "--output", str(run))
    marker = run / "checkpoints" / "step-00000008" / "trainer_state.pt"
    deadline = time.monotonic() + 300
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "model").exists()
    resumed = finish(cli(*args, "--output", str(run)))
    assert "resuming from step-" in resumed

    assert losses(run) == losses(tmp_path / "whole")
    assert losses(run, "eval_loss") == losses(tmp_path / "whole", "eval_loss")
    # the epochs each source has seen, and with a mix each source's held-out loss, resume too
    assert losses(run, "epochs") == losses(tmp_path / "whole", "epochs")
    assert losses(run, "eval_losses") == losses(tmp_path / "whole", "eval_losses")
    names = [s["name"] for s in json.loads((tokens / "tokens.json").read_text())["sources"]]
    epochs = losses(run, "epochs")
    assert list(epochs[40]) == names and sum(epochs[40].values()) > 0
    assert all(epochs[40][n] >= epochs[20][n] for n in names)
    if data == "mix_tokens":
        assert set(losses(run, "eval_losses")[40]) == set(names)
    a, b = (
        load_file(run / "model" / "model.safetensors"),
        load_file(tmp_path / "whole" / "model" / "model.safetensors"),
    )
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
@pytest.mark.parametrize(("parallel", "data"), [("ddp", "tokens"), ("fsdp", "tokens"), ("ddp", "mix_tokens")])
def test_two_processes_match_one(tmp_path, parallel, data, request):
    tokens = request.getfixturevalue(data)
    args = [
        "--data",
        str(tokens),
        "--max-steps",
        "6" if data == "tokens" else "40",  # a mix: long enough to finish documents of some sources
        "--log-every",
        "1",
        "--eval-every",
        "3",
        "--parallel",
        parallel,
    ]
    finish(cli(*args, "--output", str(tmp_path / "one")))  # global batch 4: 2 micro-batches of 2
    finish(cli(*args, "--output", str(tmp_path / "two"), nproc=2))  # 2 rows on each rank
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert one.keys() == two.keys()
    for step in one:
        assert two[step] == pytest.approx(one[step], rel=1e-4, abs=1e-4)
    e1, e2 = losses(tmp_path / "one", "eval_loss"), losses(tmp_path / "two", "eval_loss")
    assert e1.keys() == e2.keys() and all(e2[s] == pytest.approx(e1[s], rel=1e-4) for s in e1)
    assert json.loads((tmp_path / "two" / "config.json").read_text())["world_size"] == 2
    # the documents of each source read so far: the same stream, whatever the number of ranks
    epochs = losses(tmp_path / "one", "epochs")
    assert epochs == losses(tmp_path / "two", "epochs") and sum(epochs[max(epochs)].values()) > 0


def test_second_stage_starts_from_the_first(tokens, tmp_path):
    base = {"data": {"path": str(tokens)}, "training": {"max_steps": 20}}
    stage1 = train(apply(get_preset("debug"), base, "test"), tmp_path / "s1", progress=False)
    stage2_cfg = apply(
        get_preset("debug"),
        {
            "data": {"path": str(tokens), "seq_len": 128},
            "model": {"init_from": str(stage1.model_dir), "rope_theta": 50_000.0},
            "training": {"max_steps": 2},
        },
        "test",
    )
    stage2 = train(stage2_cfg, tmp_path / "s2", progress=False)
    assert json.loads((stage2.model_dir / "config.json").read_text())["rope_theta"] == 50_000.0
    first = losses(tmp_path / "s1")
    assert losses(tmp_path / "s2")[1] < first[1] - 0.3  # trained weights, not a fresh init


def test_config_file_flags_and_errors(tokens, tmp_path):
    conf = tmp_path / "run.toml"
    conf.write_text('preset = "debug"\n[training]\nmax_steps = 7\n[optimizer]\nlr = 1\n')
    cfg = load_config(conf)
    assert cfg.training.max_steps == 7 and cfg.optimizer.lr == 1.0 and cfg.model.size == "debug"
    conf.write_text("[training]\nmax_step = 7\n")
    with pytest.raises(UserError, match="has no 'max_step'"):
        load_config(conf)
    conf.write_text("[trainin]\n")
    with pytest.raises(UserError, match="unknown section"):
        load_config(conf)
    with pytest.raises(UserError, match="multiple of training.micro_batch"):
        apply(get_preset("debug"), {"training": {"global_batch": 3}}, "test")
    with pytest.raises(UserError, match="max_position_embeddings"):
        train(
            apply(get_preset("debug"), {"data": {"path": str(tokens), "seq_len": 1024}}, "t"), tmp_path / "x"
        )

    out = subprocess.run(
        [sys.executable, "-m", "stackcoder", "train", "--config", str(tmp_path / "none.toml"), "-o", "x"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert out.returncode == 2 and "no such config file" in out.stderr
    help_text = subprocess.run(
        [sys.executable, "-m", "stackcoder", "train", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for flag in ("--max-steps", "--data", "--tokenizer", "--config", "--global-batch", "--init-from"):
        assert flag in help_text


def test_other_settings_in_the_output_are_refused(tokens, tmp_path):
    cfg = apply(get_preset("debug"), {"data": {"path": str(tokens)}, "training": {"max_steps": 2}}, "test")
    train(cfg, tmp_path / "run", progress=False)
    with pytest.raises(UserError, match="other settings"):
        train(apply(cfg, {"optimizer": {"lr": 1e-2}}, "test"), tmp_path / "run", progress=False)
    again = train(
        apply(cfg, {"optimizer": {"lr": 1e-2}}, "test"), tmp_path / "run", progress=False, overwrite=True
    )
    assert again.step == 2


@pytest.mark.parametrize(
    "args, config, message",
    [
        (["--size", "huge"], "", "model.size 'huge' is not a size"),
        ([], '[model]\nattn_impl = "fast"\n', "unknown attention kernel 'fast'"),
    ],
)
def test_an_unknown_size_or_kernel_is_a_one_line_error(tmp_path, args, config, message):
    conf = tmp_path / "run.toml"
    conf.write_text(config)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "stackcoder",
            "train",
            "--config",
            str(conf),
            *args,
            "-o",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stackcoder train: error:") and message in lines[0], (
        out.stderr
    )
    assert not (tmp_path / "run").exists()
