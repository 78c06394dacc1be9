"""`stackcoder finetune`: LoRA / QLoRA on a StarCoder2 checkpoint with the user's own repositories
(recipe.md §7), through the training loop of `stackcoder train` (recipe.md §2's data: repository
documents, file-level FIM, packing with document masks, held-out repositories).

Not a second trainer: `FinetuneTrainer` is `Trainer` with its model hook (the base loaded frozen, in
bf16 or fp32, or quantized: our int8/int4 on the CPU, NF4 via bitsandbytes on CUDA, then PEFT's LoRA on
the chosen linears, adapters and optimizer in fp32) and its checkpoint hooks (a checkpoint holds the
adapter in PEFT's format plus optimizer, scheduler, RNG and loader state, so a run killed with -9
resumes exactly). The output is ``RUN/adapter`` (PEFT's `adapter_config.json` + `adapter_model.safetensors`),
and with ``merge`` also ``RUN/model``, a full checkpoint with the update merged in.

BigCode's own script (recipe.md §7) trains plain causal LM on single files and misses StarCoder2's MLP;
here the data is the repositories' documents in StarCoder2's repository-level FIM format, and the
default targets are all six linears of every block.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from stackcoder.errors import UserError
from stackcoder.model.quant import QUANTIZED_LINEARS
from stackcoder.train.config import TrainConfig, apply
from stackcoder.train.metrics import flops_per_token, peak_flops
from stackcoder.train.parallel import all_gather, close_world, init_world
from stackcoder.train.trainer import Trainer, TrainResult

QUANTIZE = ("int8", "int4", "nf4")


@dataclass
class LoraSettings:
    r: int = 16
    alpha: float = 32.0  # the update is scaled by alpha / r
    dropout: float = 0.05
    targets: list[str] = field(default_factory=lambda: list(QUANTIZED_LINEARS))  # a block's six linears
    base_dtype: str = "auto"  # the frozen base's weights: auto = bfloat16, or float32
    # int8 / int4: our weight-only kernels (model/quant.py; CPU or CUDA); nf4: bitsandbytes (CUDA, QLoRA)
    quantize: str | None = None
    gradient_checkpointing: bool = False  # recompute each block in backward: less memory, ~1/3 more compute


@dataclass
class FinetuneConfig(TrainConfig):
    lora: LoraSettings = field(default_factory=LoraSettings)

    def check(self) -> None:
        super().check()
        a = self.lora
        if a.r < 1:
            raise UserError(f"lora.r (--lora-r) must be at least 1, got {a.r}")
        if a.alpha <= 0 or not 0 <= a.dropout < 1:
            raise UserError("lora: need alpha > 0 (--lora-alpha) and 0 <= dropout < 1 (--lora-dropout)")
        if a.base_dtype not in ("auto", "bfloat16", "float32"):
            raise UserError(f"lora.base_dtype must be auto, bfloat16 or float32, not {a.base_dtype!r}")
        if a.quantize not in (None, *QUANTIZE):
            raise UserError(
                f"lora.quantize (--quantize) must be one of {', '.join(QUANTIZE)}, not {a.quantize!r}"
            )
        if self.training.parallel != "ddp":
            raise UserError("finetune runs data-parallel with DDP only: a LoRA step's state is the adapter")
        moved = [
            k for k in ("rope_theta", "max_position_embeddings", "sliding_window") if getattr(self.model, k)
        ]
        if moved:
            raise UserError(f"finetune keeps the base's config; remove model.{', model.'.join(moved)}")


def defaults() -> FinetuneConfig:
    """The defaults of `stackcoder finetune`: BigCode's fine-tuning settings where recipe.md §7 has them
    (sequence 1,024, lr within 2e-5 – 2e-4, cosine), the LoRA shape of the issue (r 16, alpha 32)."""
    cfg = FinetuneConfig()
    cfg.data.seq_len = 1024
    cfg.training.max_steps = 1000
    cfg.training.global_batch = 8
    cfg.training.micro_batch = 2
    cfg.optimizer.lr = 2e-4
    cfg.optimizer.min_lr = 2e-5
    cfg.optimizer.warmup_steps = 20
    cfg.optimizer.weight_decay = 0.01  # BigCode's finetune.py value (on the LoRA matrices)
    cfg.eval.every = 100
    cfg.checkpoint.every = 100
    return cfg


def load_finetune_config(path: str | Path | None) -> FinetuneConfig:
    """`defaults()` with a TOML file's sections applied (the same sections as `train`, plus [lora])."""
    if path is None:
        return defaults()
    try:
        values = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: not valid TOML ({e})") from None
    return apply(defaults(), values, str(path))


class FinetuneTrainer(Trainer):
    # tokens/: the shards made with the base's tokenizer, prepared before the trainer starts
    keep_on_overwrite = ("slurm", "tokens")

    def __init__(
        self, cfg: FinetuneConfig, output: str | Path, *, progress: bool = True, overwrite: bool = False
    ):
        super().__init__(cfg, output, progress=progress, overwrite=overwrite)
        self.trainable = sum(p.numel() for p in self.peft.parameters() if p.requires_grad)
        # the frozen base makes no weight gradients (2 of the 6 FLOPs per parameter), the adapters do
        self.flops_per_token = (
            flops_per_token(self.model_config, cfg.data.seq_len)
            - 2 * self.model_config.num_parameters()
            + 6 * self.trainable
        )
        if self.world.device.type == "cpu" and cfg.lora.base_dtype != "float32":  # the base computes in bf16
            self.peak, self.peak_source = peak_flops(self.world.device, cfg.log.peak_tflops, torch.bfloat16)

    def build_model(self) -> torch.nn.Module:
        from stackcoder.model.lora import add_lora

        a, base = self.cfg.lora, Path(self.cfg.model.init_from)
        model = load_base(base, a, self.world.device)
        model.attn_impl = self.attn_impl()
        model.gradient_checkpointing = a.gradient_checkpointing
        self.peft = add_lora(
            model, r=a.r, alpha=a.alpha, dropout=a.dropout, targets=a.targets, base=str(base.resolve())
        )
        return self.peft.train()

    # ---- checkpoint hooks: the adapter instead of the full model -------------------------------------
    def write_weights(self, directory: Path) -> None:
        from stackcoder.model.lora import save_adapter

        save_adapter(self.peft, directory)

    def read_weights(self, directory: Path) -> None:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        from stackcoder.model.lora import ADAPTER_WEIGHTS

        result = set_peft_model_state_dict(self.peft, load_file(directory / ADAPTER_WEIGHTS))
        if result.unexpected_keys or any("lora_" in k for k in result.missing_keys):
            raise UserError(f"{directory}: the checkpoint's adapter does not fit this run's LoRA settings")

    def export(self) -> Path:
        out = self.output / "adapter"
        if self.world.main:
            self.write_weights(out)
        return out

    def _banner(self, resume: Path | None) -> str:
        """`train`'s line (devices, data, batch, steps, MFU peak) under a head saying what is trained."""
        a = self.cfg.lora
        base = a.quantize or ("float32" if a.base_dtype == "float32" else "bfloat16")
        line = super()._banner(resume).replace("from scratch", "from the base")
        return (
            f"fine-tuning {self.trainable:,} LoRA parameters (r {a.r}, alpha {a.alpha:g} on "
            f"{', '.join(a.targets)}) of {self.cfg.model.init_from} "
            f"({self.model_config.num_parameters() / 1e6:.1f}M parameters, {base}, frozen)"
            + line[line.index(" on ") :]
        )


def load_base(path: Path, a: LoraSettings, device: torch.device) -> torch.nn.Module:
    """The base checkpoint for fine-tuning: bf16 (default) or fp32, or int8/int4 (ours), or NF4."""
    from stackcoder.model.hf import load_model

    if a.quantize == "nf4":
        from stackcoder.model.nf4 import load_model_nf4

        return load_model_nf4(path, device)
    dtype = torch.float32 if a.base_dtype == "float32" else torch.bfloat16
    return load_model(path, dtype=dtype, device=device, quantize=a.quantize)


# ---- the data: the dataset's token shards when they were made with the base's tokenizer ----------------
def same_tokenizer(a: Path, b: Path) -> bool:
    a, b = (p / "tokenizer.json" if p.is_dir() else p for p in (a, b))
    if not (a.is_file() and b.is_file()):
        return False
    if a.read_bytes() == b.read_bytes():
        return True
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(a)).to_str() == Tokenizer.from_file(str(b)).to_str()


def prepare_tokens(
    dataset: str | Path,
    tokenizer: Path,
    run: Path,
    *,
    valid_fraction: float = 0.05,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Token shards of `dataset` made with `tokenizer`: the dataset's own (``DATASET`` or
    ``DATASET/tokens``) when they were, else its documents tokenized into ``RUN/tokens`` (once: a rerun
    reuses them). Errors name the fix; a split without held-out repositories is one."""
    from stackcoder.data.executor import RunOptions
    from stackcoder.data.layout import DOCUMENTS, TOKENS, TOKENS_JSON, DatasetLayout
    from stackcoder.data.options import TokenizeConfig
    from stackcoder.data.tokenize import tokenize

    d = Path(dataset)
    if not d.is_dir():
        raise UserError(f"{dataset}: no such directory; give a `stackcoder build` output or its token shards")
    other = None
    for tokens in (d, DatasetLayout(d).tokens):
        if (tokens / TOKENS_JSON).is_file():
            made_with = Path(json.loads((tokens / TOKENS_JSON).read_text())["tokenizer"])
            if same_tokenizer(made_with, tokenizer):
                return check_held_out(tokens)
            other = made_with
            break
    docs = DatasetLayout.resolve(d, DOCUMENTS)
    if not any(docs.glob("*.parquet")):
        if other is not None:
            raise UserError(
                f"{dataset}: its token shards were made with {other}, not the base's tokenizer, and there "
                "are no documents here to tokenize again; give the directory `stackcoder build` wrote"
            )
        raise UserError(
            f"{dataset}: neither token shards (tokens.json) nor documents (*.parquet); give a "
            "`stackcoder build` output or its `stackcoder tokenize` shards"
        )
    out = run / TOKENS
    if (out / TOKENS_JSON).is_file() and not overwrite:
        info = json.loads((out / TOKENS_JSON).read_text())
        made = (info.get("dataset"), info.get("tokenizer"), info.get("valid_fraction"))
        if made == (str(d.resolve()), str(tokenizer.resolve()), valid_fraction):
            return check_held_out(out)
    tokenize(
        TokenizeConfig(
            str(d),
            str(tokenizer),
            output=str(out),
            valid_fraction=valid_fraction,
            overwrite=True,  # RUN/tokens is ours: stale or cut short, it is made again
            run=RunOptions(progress=progress),
        )
    )
    return check_held_out(out)


def check_held_out(tokens: Path) -> Path:
    info = json.loads((tokens / "tokens.json").read_text())
    if not info.get("valid", {}).get("documents"):
        raise UserError(
            f"{tokens}: no held-out repository to evaluate on; tokenize with --valid-fraction > 0 "
            "(finetune --valid-fraction) from a dataset of at least two repositories"
        )
    return tokens


def base_tokenizer(base: Path, tokenizer: str = "") -> Path:
    """The tokenizer fine-tuning uses: the base's own (its tokenizer.json), or the one given."""
    from stackcoder.model.hf import load_config, weight_files

    load_config(base)  # one-line errors for a directory without config.json ...
    weight_files(base)  # ... or without weights, before anything is tokenized
    tok = Path(tokenizer) if tokenizer else base / "tokenizer.json"
    tok = tok / "tokenizer.json" if tok.is_dir() else tok
    if not tok.is_file():
        raise UserError(f"{base}: no tokenizer.json; give the base's tokenizer with --tokenizer DIR")
    return tok


def finetune(
    cfg: FinetuneConfig,
    base: str | Path,
    dataset: str | Path,
    output: str | Path,
    *,
    merge: bool = False,
    valid_fraction: float = 0.05,
    progress: bool = True,
    overwrite: bool = False,
) -> tuple[TrainResult, Path | None]:
    """Fine-tune `base` on `dataset` into `output`; returns the result (``model_dir`` is the adapter)
    and the merged checkpoint's directory (with `merge`)."""
    output, base = Path(output), Path(base)
    try:
        world = init_world(cfg.training.device)
        tokenizer = base_tokenizer(base, cfg.data.tokenizer)
        problem, tokens = None, None
        if world.main:  # one rank tokenizes; the others wait for its answer
            try:
                tokens = prepare_tokens(
                    dataset,
                    tokenizer,
                    output,
                    valid_fraction=valid_fraction,
                    overwrite=overwrite,
                    progress=progress,
                )
            except UserError as e:
                problem = str(e)
        problem, tokens = all_gather((problem, tokens), world)[0]
        if problem:
            raise UserError(problem)
        values: dict[str, Any] = {
            "model": {"init_from": str(base)},
            "data": {"path": str(tokens), "tokenizer": str(tokenizer)},
        }
        cfg = apply(cfg, values, "finetune")
        trainer = FinetuneTrainer(cfg, output, progress=progress, overwrite=overwrite)
        result = trainer.train()
        merged = None
        if merge and trainer.world.main:
            from stackcoder.model.lora import merge_checkpoint

            merged = merge_checkpoint(base, result.model_dir, output / "model")
        return result, merged
    finally:
        close_world()
