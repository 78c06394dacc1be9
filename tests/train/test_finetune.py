"""`stackcoder finetune` on the fixture repositories: LoRA over a small base through the training loop (the
loss falls, held-out losses are logged, the adapter is PEFT's format, `--merge` writes a checkpoint that
transformers loads with our logits), a run killed with SIGKILL resumes with the same losses and adapter,
the dataset is tokenized with the base's tokenizer when its shards were made with another, and bad input
is a one-line error naming the fix."""

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

pytest.importorskip("peft")
from safetensors.torch import load_file  # noqa: E402

from stackcoder.errors import UserError  # noqa: E402
from stackcoder.train.config import apply  # noqa: E402
from stackcoder.train.finetune import FinetuneConfig, defaults, finetune  # noqa: E402

ROOT = Path(__file__).parents[2]
FIXTURE_TOKENIZER = ROOT / "tests" / "fixtures" / "model"


def losses(run: Path, key: str = "loss") -> dict[int, float]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r[key] for r in records if key in r}


def make_base(path: Path, tokenizer: Path, vocab: int) -> Path:
    """A random debug-size base; its weights are spread wider than a fresh model's (initializer_range
    0.2, not 0.018), so its logits are not all near zero: there is something for LoRA to correct."""
    from stackcoder.model import Starcoder2, get_size
    from stackcoder.model.hf import save_model

    torch.manual_seed(0)
    model = Starcoder2(get_size("debug", vocab_size=vocab, initializer_range=0.2))
    return save_model(model, path, tokenizer_dir=tokenizer)


@pytest.fixture(scope="module")
def base(tokenizer_dir, tmp_path_factory) -> Path:
    """A base with the fixture dataset's tokenizer, so the dataset's token shards fit as they are."""
    from stackcoder.tokenizer.files import load_tokenizer

    vocab = load_tokenizer(tokenizer_dir).get_vocab_size(with_added_tokens=True)
    return make_base(tmp_path_factory.mktemp("base"), tokenizer_dir, vocab)


def small(**values) -> FinetuneConfig:
    cfg = {
        "data": {"seq_len": 64},
        "training": {"max_steps": 30, "global_batch": 4, "micro_batch": 2},
        "optimizer": {"lr": 1e-2, "min_lr": 1e-3, "warmup_steps": 2},
        "eval": {"every": 10, "batches": 2},
        "checkpoint": {"every": 10},
        "log": {"every": 1},
        "lora": {"base_dtype": "float32"},
    }
    for section, fields in values.items():
        cfg.setdefault(section, {}).update(fields)
    return apply(defaults(), cfg, "test")


def cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "stackcoder", "finetune", "--no-progress", *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    return out


def test_loss_falls_adapter_is_peft_and_merge_loads_in_transformers(base, dataset, tokens, tmp_path):
    result, merged = finetune(small(), base, dataset, tmp_path / "run", merge=True, progress=False)
    curve = list(losses(tmp_path / "run").values())
    assert len(curve) == 30 and sum(curve[-10:]) / 10 < sum(curve[:10]) / 10 - 0.3
    evals = list(losses(tmp_path / "run", "eval_loss").values())
    assert len(evals) == 3 and evals[-1] < evals[0]
    resolved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert resolved["data"]["path"] == str(tokens)  # the dataset's shards: same tokenizer as the base
    assert resolved["lora"]["targets"] == ["q_proj", "k_proj", "v_proj", "o_proj", "c_fc", "c_proj"]

    adapter = result.model_dir
    assert adapter == tmp_path / "run" / "adapter"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(base.resolve()) and config["r"] == 16
    weights = load_file(adapter / "adapter_model.safetensors")
    assert len(weights) == 2 * 6 * 2 and all(w.dtype == torch.float32 for w in weights.values())
    checkpoint = tmp_path / "run" / "checkpoints" / "step-00000030"
    assert {p.name for p in checkpoint.iterdir()} >= {"adapter_model.safetensors", "trainer_state.pt"}
    assert not (checkpoint / "model.safetensors").exists()  # the base is not copied into checkpoints

    transformers = pytest.importorskip("transformers")
    from peft import PeftModel

    from stackcoder.model.hf import load_model
    from stackcoder.model.lora import apply_adapter

    x = torch.randint(0, 500, (2, 48))
    with torch.no_grad():
        ours = apply_adapter(load_model(base), adapter)(x)[0]
        hf = transformers.Starcoder2ForCausalLM.from_pretrained(base).eval()
        theirs = PeftModel.from_pretrained(hf, adapter).eval()(x).logits
        theirs_merged = transformers.Starcoder2ForCausalLM.from_pretrained(merged).eval()(x).logits
        plain = load_model(base)(x)[0]
    assert merged == tmp_path / "run" / "model"
    assert torch.allclose(ours, theirs, atol=1e-4) and torch.allclose(ours, theirs_merged, atol=1e-4)
    assert not torch.allclose(ours, plain, atol=1e-3)


def test_killed_run_resumes_with_identical_losses_and_adapter(base, dataset, tmp_path):
    args = ["--model", str(base), "--data", str(dataset), "--seq-len", "64", "--global-batch", "4"]
    args += ["--micro-batch", "2", "--max-steps", "16", "--save-every", "4", "--eval-every", "8"]
    args += ["--log-every", "1", "--lr", "1e-2", "--lora-r", "4"]
    whole = finish(cli(*args, "--output", str(tmp_path / "whole")))
    assert "done: step 16" in whole and "fine-tuning" in whole

    run = tmp_path / "killed"
    proc = cli(*args, "--output", str(run))
    marker = run / "checkpoints" / "step-00000008" / "trainer_state.pt"
    deadline = time.monotonic() + 300
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "adapter").exists()
    resumed = finish(cli(*args, "--output", str(run)))
    assert "resuming from step-" in resumed

    assert losses(run) == losses(tmp_path / "whole")
    assert losses(run, "eval_loss") == losses(tmp_path / "whole", "eval_loss")
    a, b = (load_file(r / "adapter" / "adapter_model.safetensors") for r in (run, tmp_path / "whole"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_dataset_is_tokenized_with_the_base_tokenizer(dataset, tmp_path):
    # a base whose tokenizer is not the one the dataset's shards were made with
    other = make_base(tmp_path / "base", FIXTURE_TOKENIZER, vocab=400)
    cfg = small(training={"max_steps": 2}, lora={"r": 2, "targets": ["q_proj", "c_fc"]})
    result, _ = finetune(cfg, other, dataset, tmp_path / "run", progress=False)
    info = json.loads((tmp_path / "run" / "tokens" / "tokens.json").read_text())
    assert info["tokenizer"] == str((other / "tokenizer.json").resolve())
    assert info["valid"]["documents"] >= 1 and result.step == 2
    assert len(load_file(result.model_dir / "adapter_model.safetensors")) == 2 * 2 * 2


def test_bad_input_is_a_one_line_error(base, dataset, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="missing config.json"):
        finetune(small(), empty, dataset, tmp_path / "a", progress=False)
    (empty / "config.json").write_text((base / "config.json").read_text())
    with pytest.raises(UserError, match="missing model.safetensors"):
        finetune(small(), empty, dataset, tmp_path / "a", progress=False)
    with pytest.raises(UserError, match="--lora-r"):
        small(lora={"r": 0})
    with pytest.raises(UserError, match="documents for 64 rows per batch.*lower the global batch"):
        finetune(small(training={"global_batch": 64}), base, dataset, tmp_path / "b", progress=False)
    with pytest.raises(UserError, match="'gate_proj' matches no linear layer"):
        finetune(small(lora={"targets": ["gate_proj"]}), base, dataset, tmp_path / "c", progress=False)
    other = make_base(tmp_path / "other", FIXTURE_TOKENIZER, vocab=400)
    with pytest.raises(UserError, match="no held-out repository.*--valid-fraction"):
        finetune(small(), other, dataset, tmp_path / "d", valid_fraction=0.0, progress=False)
    with pytest.raises(UserError, match="neither token shards"):
        finetune(small(), base, empty, tmp_path / "e", progress=False)
    out = subprocess.run(
        [sys.executable, "-m", "stackcoder", "finetune", "--model", str(base), "--output", "x"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert out.returncode == 2 and "finetune needs --data" in out.stderr


@pytest.mark.slow
def test_two_processes_match_one(base, dataset, tmp_path):
    args = ["--model", str(base), "--data", str(dataset), "--seq-len", "64", "--global-batch", "4"]
    args += ["--micro-batch", "2", "--max-steps", "4", "--eval-every", "2", "--log-every", "1"]
    finish(cli(*args, "--output", str(tmp_path / "one")))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    two = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "-m", "stackcoder", "finetune"]
        + ["--no-progress", *args, "--output", str(tmp_path / "two")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert two.returncode == 0, (two.stdout + two.stderr)[-3000:]
    one, other = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert one.keys() == other.keys() and all(other[s] == pytest.approx(one[s], rel=1e-4) for s in one)
    e1, e2 = losses(tmp_path / "one", "eval_loss"), losses(tmp_path / "two", "eval_loss")
    assert e1.keys() == e2.keys() and all(e2[s] == pytest.approx(e1[s], rel=1e-4) for s in e1)
