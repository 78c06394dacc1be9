"""Named training runs: each a function returning the full config; a variant changes its base.
``load_config`` is what `stackcoder train` starts from: a preset with a config file applied.

The StarCoder2 presets follow recipe.md §3: the 3B trained at 4k context first, then at 16k with
another RoPE θ, starting from the first stage's weights. Batch sizes and learning rates are not in
recipe.md; the values here are common choices for models of these sizes, marked as such.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stackcoder.errors import UserError
from stackcoder.train.config import TrainConfig, apply


def debug() -> TrainConfig:
    """Tests: the debug model (window 32) on 64-token rows, a few steps."""
    cfg = TrainConfig()
    cfg.model.size = "debug"
    cfg.data.seq_len = 64
    cfg.training.max_steps = 8
    cfg.training.global_batch = 4
    cfg.training.micro_batch = 2
    cfg.optimizer.lr = 3e-3
    cfg.optimizer.min_lr = 3e-4
    cfg.optimizer.warmup_steps = 2
    cfg.eval.every = 4
    cfg.eval.batches = 2
    cfg.checkpoint.every = 4
    cfg.log.every = 1
    return cfg


def cpu_tiny() -> TrainConfig:
    """The README's main job: the tiny model (~4M parameters without embeddings) for a few minutes
    on 2 CPU cores; its loss falls from ~ln(vocab) within the first hundred steps."""
    cfg = TrainConfig()
    cfg.model.size = "tiny"
    cfg.data.seq_len = 256
    cfg.training.max_steps = 300
    cfg.training.global_batch = 8
    cfg.training.micro_batch = 8
    cfg.optimizer.lr = 2e-3
    cfg.optimizer.min_lr = 2e-4
    cfg.optimizer.warmup_steps = 30
    cfg.eval.every = 100
    cfg.eval.batches = 4
    cfg.checkpoint.every = 100
    cfg.log.every = 10
    return cfg


def cpu_small() -> TrainConfig:
    cfg = cpu_tiny()
    cfg.model.size = "small"
    cfg.data.seq_len = 512
    cfg.optimizer.lr = 1e-3
    cfg.optimizer.min_lr = 1e-4
    return cfg


def m100() -> TrainConfig:
    """~113M parameters (the medium size, 49,152-token vocabulary) at 2k context: the GPU preset
    benchmarks/gpu_train.py runs for a few minutes."""
    cfg = TrainConfig()
    cfg.model.size = "medium"
    cfg.data.seq_len = 2048
    cfg.training.max_steps = 2000
    cfg.training.global_batch = 32
    cfg.training.micro_batch = 16
    cfg.optimizer.lr = 6e-4
    cfg.optimizer.min_lr = 6e-5
    cfg.optimizer.warmup_steps = 200
    cfg.eval.every = 500
    cfg.checkpoint.every = 500
    return cfg


def s3b_4k() -> TrainConfig:
    """StarCoder2-3B's first stage: 4,096-token context (recipe.md §3)."""
    cfg = TrainConfig()
    cfg.model.size = "3b"
    cfg.data.seq_len = 4096
    cfg.model.rope_theta = 1e5  # stage-1 θ not published; the released (16k) config has ~1e6
    cfg.training.global_batch = 512  # ~2M tokens per step: a common choice, not from recipe.md
    cfg.training.micro_batch = 4
    cfg.training.parallel = "fsdp"
    cfg.training.max_steps = 1_000_000
    cfg.optimizer.warmup_steps = 1000
    cfg.eval.every = 1000
    cfg.checkpoint.every = 1000
    return cfg


def s3b_16k() -> TrainConfig:
    """StarCoder2-3B's second stage: 16,384-token context, RoPE θ of the released config, from stage 1."""
    cfg = s3b_4k()
    cfg.model.init_from = "out/s3b_4k/model"
    cfg.model.rope_theta = 999_999.4420358813  # the released config.json's value
    cfg.model.max_position_embeddings = 16_384
    cfg.data.seq_len = 16_384
    cfg.training.global_batch = 128
    cfg.training.micro_batch = 1
    cfg.training.max_steps = 10_000
    return cfg


PRESETS: dict[str, Callable[[], TrainConfig]] = {
    f.__name__: f for f in (debug, cpu_tiny, cpu_small, m100, s3b_4k, s3b_16k)
}


def get_preset(name: str) -> TrainConfig:
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name]()


def load_config(path: str | Path | None, preset: str | None = None) -> TrainConfig:
    """The preset (the file's ``preset =`` or ``preset``, default ``cpu_tiny``) with the file applied."""
    values: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            values = tomllib.loads(p.read_text())
        except FileNotFoundError:
            raise UserError(f"{p}: no such config file") from None
        except tomllib.TOMLDecodeError as e:
            raise UserError(f"{p}: not valid TOML ({e})") from None
    name = preset or values.get("preset") or "cpu_tiny"
    return apply(get_preset(name), values, str(path or f"preset {name}"))
