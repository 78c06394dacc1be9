"""The training config: a tree of small dataclasses, read from TOML and command-line overrides.

A config file names a preset (``train/presets.py``) and changes some fields, section by section:

    preset = "cpu_tiny"
    [data]
    path = "out/demo/tokens"
    seq_len = 512
    [training]
    max_steps = 300

Each run writes its resolved config as ``OUTPUT/config.json``.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from stackcoder.errors import UserError


@dataclass
class ModelConfig:
    size: str = "tiny"  # a name in stackcoder.model.SIZES; vocab_size comes from the tokenizer
    init_from: str | None = None  # an HF-layout checkpoint to start from (a second context stage)
    rope_theta: float | None = None  # None: the size's (or init_from's) value
    max_position_embeddings: int | None = None
    sliding_window: int | None = None
    attn_impl: str = "auto"  # auto: flash-attn on CUDA when installed, else SDPA


@dataclass
class DataConfig:
    path: str = ""  # `stackcoder tokenize` output (train/ and valid/), or a dataset dir holding tokens/
    tokenizer: str = ""  # default: the one tokens.json names
    seq_len: int = 1024
    # recipe.md §2: 50% of repositories are FIM candidates, 50% of a candidate's files transformed
    fim_rate: float = 0.5
    fim_file_rate: float = 0.5
    fim_spm_rate: float = 0.5  # PSM/SPM ratio unpublished (recipe.md §2); 0.5 as reference code does


@dataclass
class OptimizerConfig:
    # AdamW; StarCoder2's values are not in recipe.md, these are the common GPT-style ones
    lr: float = 3e-4
    min_lr: float = 3e-5  # the cosine decays to this at max_steps
    warmup_steps: int = 100
    weight_decay: float = 0.1  # on matrices only: no decay for biases, norms
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0  # max global gradient norm; 0 turns clipping off


@dataclass
class TrainingConfig:
    max_steps: int = 1000
    global_batch: int = 8  # rows of seq_len tokens per optimizer step, over all ranks
    micro_batch: int = 4  # rows per forward pass on one rank (gradient accumulation makes up the rest)
    seed: int = 0
    device: str = "auto"  # auto: cuda when available, else cpu
    dtype: str = "auto"  # auto: bf16 autocast on CUDA, fp32 on the CPU
    parallel: str = "ddp"  # data parallelism under torchrun: ddp, or fsdp (FSDP2) for large models
    compile: bool = False


@dataclass
class EvalConfig:
    every: int = 100  # steps; 0 = only at the end
    batches: int = 8  # at most this many batches of the held-out split (fewer when it is small)


@dataclass
class CheckpointConfig:
    every: int = 200  # steps; 0 = only at the end
    keep: int = 2  # the newest this many checkpoints are kept


@dataclass
class LogConfig:
    every: int = 10
    peak_tflops: float | None = (
        None  # for MFU; default: the GPU's bf16 spec, or the CPU's measured matmul rate
    )


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        t = self.training
        if t.global_batch < 1 or t.micro_batch < 1 or t.global_batch % t.micro_batch:
            raise UserError(
                f"training.global_batch ({t.global_batch}) must be a positive multiple of "
                "training.micro_batch "
                f"({t.micro_batch})"
            )
        if t.max_steps < 1:
            raise UserError("training.max_steps must be at least 1")
        if self.data.seq_len < 2:
            raise UserError("data.seq_len must be at least 2")
        if t.parallel not in ("ddp", "fsdp"):
            raise UserError(f"training.parallel must be ddp or fsdp, not {t.parallel!r}")
        if t.dtype not in ("auto", "float32", "bfloat16"):
            raise UserError(f"training.dtype must be auto, float32 or bfloat16, not {t.dtype!r}")
        o = self.optimizer
        if o.lr <= 0 or o.min_lr < 0 or o.min_lr > o.lr or o.warmup_steps < 0:
            raise UserError("optimizer: need lr > 0, 0 <= min_lr <= lr and warmup_steps >= 0")
        # the model's names, checked here so that a typo is one line before any work, not a traceback
        # from the first forward (imported here: the model's modules load torch)
        from stackcoder.model.attention import check_attn_impl
        from stackcoder.model.config import SIZES

        m = self.model
        if not m.init_from and m.size not in SIZES:
            raise UserError(f"model.size {m.size!r} is not a size: use one of {', '.join(SIZES)}")
        check_attn_impl(m.attn_impl)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SECTIONS = {f.name: f.type for f in dataclasses.fields(TrainConfig)}


def apply(cfg: TrainConfig, values: dict[str, Any], origin: str) -> TrainConfig:
    """A copy of ``cfg`` with ``{section: {field: value}}`` applied; an unknown name is an error
    that says where it came from."""
    cfg = copy.deepcopy(cfg)
    for section, fields in values.items():
        if section == "preset":
            continue
        part = getattr(cfg, section, None)
        if part is None or not isinstance(fields, dict):
            raise UserError(f"{origin}: unknown section [{section}] (sections: {', '.join(SECTIONS)})")
        known = {f.name: f for f in dataclasses.fields(part)}
        for name, value in fields.items():
            if name not in known:
                raise UserError(f"{origin}: [{section}] has no {name!r} (known: {', '.join(known)})")
            setattr(part, name, _coerce(value, getattr(part, name), f"{origin}: {section}.{name}"))
    cfg.check()
    return cfg


def _coerce(value: Any, current: Any, where: str) -> Any:
    # TOML writes 3e-4 as a float and 100 as an int; accept an int where a float is expected
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if current is not None and value is not None and type(current) is not type(value):
        raise UserError(f"{where}: expected {type(current).__name__}, got {value!r}")
    return value
