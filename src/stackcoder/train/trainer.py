"""`stackcoder train`: StarCoder2 trained on token shards, the way recipe.md §2 says: repository
documents with file-level FIM, packed rows with document masking, AdamW with warmup and cosine
decay, exact resume from Hugging Face-layout checkpoints, DDP or FSDP2 under ``torchrun``.

``Trainer.train()`` reads as its steps: resume, then per step a batch, ``train_step`` (micro-batches,
backward, clip, optimizer), log, evaluate, save.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from stackcoder import __version__
from stackcoder.data.layout import TOKENS, TOKENS_JSON, DatasetLayout
from stackcoder.data.mix import mix_sources
from stackcoder.errors import UserError
from stackcoder.model.attention import pick_attn_impl
from stackcoder.model.config import Starcoder2Config, get_size
from stackcoder.model.hf import load_config, save_state
from stackcoder.model.model import Starcoder2
from stackcoder.output import OutputRule, json_record, prepare_output
from stackcoder.train.checkpoint import latest_checkpoint, load_checkpoint, load_weights, save_checkpoint
from stackcoder.train.config import TrainConfig
from stackcoder.train.dataset import Batch, MixSource, PackedLoader, TokenShards
from stackcoder.train.fim import Fim
from stackcoder.train.metrics import MetricsLog, flops_per_token, peak_flops
from stackcoder.train.parallel import all_gather, all_sum, close_world, init_world, parallelize


@dataclass
class TrainResult:
    output: Path
    step: int
    loss: float | None
    eval_loss: float | None
    model_dir: Path


def resolve_tokens(path: str) -> tuple[Path, dict[str, Any]]:
    """The `stackcoder tokenize` output: ``path`` itself, or ``path/tokens`` for a dataset directory."""
    if not path:
        raise UserError("no training data: set data.path (or --data) to a `stackcoder tokenize` output")
    p = Path(path)
    if not (p / TOKENS_JSON).is_file():
        p = DatasetLayout.resolve(p, TOKENS)
    if not (p / TOKENS_JSON).is_file():
        raise UserError(f"{path}: no tokens.json; run `stackcoder tokenize DATASET --tokenizer TOK` first")
    return p, json.loads((p / TOKENS_JSON).read_text())


def build_model_config(cfg: TrainConfig, vocab_size: int) -> Starcoder2Config:
    m = cfg.model
    base = load_config(m.init_from) if m.init_from else get_size(m.size, vocab_size=vocab_size)
    overrides = {k: getattr(m, k) for k in ("rope_theta", "max_position_embeddings", "sliding_window")}
    mc = Starcoder2Config(**{**base.__dict__, **{k: v for k, v in overrides.items() if v is not None}})
    if mc.vocab_size < vocab_size:
        raise UserError(
            f"the model's vocab_size {mc.vocab_size} is smaller than the tokenizer's {vocab_size}"
        )
    if cfg.data.seq_len > mc.max_position_embeddings:
        raise UserError(
            f"data.seq_len {cfg.data.seq_len} exceeds the model's max_position_embeddings "
            f"{mc.max_position_embeddings}; raise model.max_position_embeddings"
        )
    return mc


def lr_lambda(cfg: TrainConfig):  # noqa: ANN201 - LambdaLR's callable
    """Linear warmup from 0, then cosine from lr down to min_lr at max_steps (a multiplier of lr)."""
    o, total = cfg.optimizer, cfg.training.max_steps

    def factor(step: int) -> float:
        if step < o.warmup_steps:
            return (step + 1) / o.warmup_steps
        progress = min(1.0, (step - o.warmup_steps) / max(1, total - o.warmup_steps))
        return (o.min_lr + 0.5 * (o.lr - o.min_lr) * (1 + math.cos(math.pi * progress))) / o.lr

    return factor


class Trainer:
    # what `--overwrite` leaves in the output: slurm/ (the job running this may log there)
    keep_on_overwrite: tuple[str, ...] = ("slurm",)
    # how a checkpoint holds the weights (a method taking its directory); None: the full model in the
    # HF layout. `stackcoder finetune` writes and reads the adapter alone (train/finetune.py)
    write_weights: Callable[[Path], None] | None = None
    read_weights: Callable[[Path], None] | None = None

    def __init__(
        self, cfg: TrainConfig, output: str | Path, *, progress: bool = True, overwrite: bool = False
    ):
        self.cfg, self.output = cfg, Path(output)
        self.world = world = init_world(cfg.training.device)
        self.show = progress and world.main
        tokens, info = resolve_tokens(cfg.data.path)
        from stackcoder.tokenizer.files import load_tokenizer

        self.tokenizer_path = Path(cfg.data.tokenizer or info["tokenizer"])
        tokenizer = load_tokenizer(self.tokenizer_path)
        self.tokenizer_dir = (
            self.tokenizer_path if self.tokenizer_path.is_dir() else self.tokenizer_path.parent
        )
        self.model_config = build_model_config(cfg, tokenizer.get_vocab_size(with_added_tokens=True))
        self._prepare_output(overwrite)

        t = cfg.training
        if t.global_batch % world.size:
            raise UserError(f"training.global_batch {t.global_batch} must divide among {world.size} ranks")
        per_rank = t.global_batch // world.size
        if per_rank % t.micro_batch:
            raise UserError(
                f"{per_rank} rows per rank is not a multiple of training.micro_batch {t.micro_batch}"
            )
        here = range(world.rank * per_rank, (world.rank + 1) * per_rank)
        # the sources of the mix tokens.json records (one for a dataset of documents alone)
        self.mix = mix_sources(info)
        self.loader = PackedLoader(
            [self._mix_source(tokens, s, tokenizer) for s in self.mix],
            seq_len=cfg.data.seq_len,
            lanes=t.global_batch,
            lanes_here=here,
            seed=t.seed,
        )
        valid = {s["name"]: tokens / "valid" / s["dir"] for s in self.mix}
        self.valid = {name: TokenShards(d) for name, d in valid.items() if any(d.glob("*.ds"))}

        torch.manual_seed(t.seed)
        self.raw_model = model = self.build_model()
        self.model = parallelize(model, world, t.parallel)
        if t.compile:
            self.model = torch.compile(self.model)
        self.optimizer = self._optimizer()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(cfg))
        bf16 = t.dtype == "bfloat16" or (t.dtype == "auto" and world.device.type == "cuda")
        self.autocast = torch.autocast(world.device.type, dtype=torch.bfloat16, enabled=bf16)
        self.flops_per_token = flops_per_token(self.model_config, cfg.data.seq_len)
        # on the CPU MFU is against the measured matmul rate of the dtype the model computes in
        compute = torch.bfloat16 if bf16 else torch.float32
        self.peak, self.peak_source = peak_flops(world.device, cfg.log.peak_tflops, compute)
        self.step = 0

    def _prepare_output(self, overwrite: bool) -> None:
        resolved = {
            "stackcoder": __version__,
            **self.cfg.to_dict(),
            "model_config": self.model_config.to_hf_dict(),
        }
        resolved["world_size"] = self.world.size
        # the one output rule (stackcoder/output.py): the same settings resume, other ones are refused
        # or, with --overwrite, replaced; other files may share the folder (the run's slurm/)
        rule = OutputRule(
            "run",
            "config.json",
            json_record(),
            keep=self.keep_on_overwrite,
            ignore=("stackcoder",),
            shared=True,
            queued_logs=None,
        )
        problem = None
        if self.world.main:
            try:
                prepare_output(self.output, resolved, overwrite, rule)
            except UserError as e:
                problem = str(e)
        # every rank raises, not only the one that found it: the others would wait for it forever
        problem = next((p for p in all_gather(problem, self.world) if p), None)
        if problem:
            raise UserError(problem)

    def build_model(self) -> torch.nn.Module:
        """A fresh model, or ``model.init_from``'s weights (`stackcoder finetune` overrides this: a
        frozen base with LoRA adapters, train/finetune.py)."""
        model = Starcoder2(self.model_config).to(self.world.device)
        if self.cfg.model.init_from:
            load_weights(Path(self.cfg.model.init_from), model)
        model.attn_impl = self.attn_impl()
        return model

    def attn_impl(self) -> str:
        impl = self.cfg.model.attn_impl
        return pick_attn_impl(self.world.device) if impl == "auto" else impl

    def _optimizer(self) -> torch.optim.Optimizer:
        o = self.cfg.optimizer
        params = [p for p in self.model.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": o.weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        fused = self.world.device.type == "cuda"
        return torch.optim.AdamW(groups, lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps, fused=fused)

    # ---- the loop ------------------------------------------------------------------------------
    def train(self) -> TrainResult:
        cfg, world = self.cfg, self.world
        resume = latest_checkpoint(self.output)
        if resume is not None:
            self.step, loader_state = self.load(resume)
            self.loader.load_state_dict(loader_state)
        log = MetricsLog(self.output / "metrics.jsonl", world.main, self.step if resume else None)
        self._say(self._banner(resume))
        bar = tqdm(
            total=cfg.training.max_steps,
            initial=self.step,
            desc="train",
            disable=not self.show,
            file=sys.stderr,
        )
        loss = eval_loss = None
        window_start, window_tokens, window_losses = time.perf_counter(), 0, []
        while self.step < cfg.training.max_steps:
            batch = self.loader.next_batch()
            loss, grad_norm = self.train_step(batch)
            window_losses.append(loss)
            self.step += 1
            window_tokens += cfg.training.global_batch * cfg.data.seq_len
            bar.update(1)
            if self.step % cfg.log.every == 0 or self.step == cfg.training.max_steps:
                seconds = time.perf_counter() - window_start
                # the mean over the steps since the last line: one step's loss is noisy
                mean = sum(window_losses) / len(window_losses)
                record = self._record(mean, grad_norm, window_tokens / seconds)
                log.write(record)
                self._say(self._line(record), bar)
                window_start, window_tokens, window_losses = time.perf_counter(), 0, []
            last = self.step == cfg.training.max_steps
            if (cfg.eval.every and self.step % cfg.eval.every == 0) or last:
                eval_loss = self.evaluate()
                if eval_loss is not None:
                    record = {"step": self.step, "eval_loss": round(eval_loss, 5)}
                    if len(self.mix) > 1:  # and each source's held-out loss
                        record["eval_losses"] = {k: round(v, 5) for k, v in self.eval_losses.items()}
                    log.write(record)
                    self._say(f"step {self.step}: held-out loss {eval_loss:.4f}", bar)
            if (cfg.checkpoint.every and self.step % cfg.checkpoint.every == 0) or last:
                self.save()
        bar.close()
        model_dir = self.export()
        if world.main:
            log.plot(self.output / "loss.png")
        close_world()
        return TrainResult(self.output, self.step, loss, eval_loss, model_dir)

    def train_step(self, batch: Batch) -> tuple[float, float]:
        """One optimizer step over the rank's rows, in micro-batches. Each micro-batch's mean loss is
        weighted by its share of the global batch's target tokens, so the gradient is the global mean
        whatever the micro-batch and world sizes (DDP and FSDP average over ranks: hence ``world.size``)."""
        world, mb = self.world, self.cfg.training.micro_batch
        n_global = float(all_sum(batch.tokens, world))
        n_micro = batch.input_ids.shape[0] // mb
        total = 0.0
        for i in range(n_micro):
            rows = slice(i * mb, (i + 1) * mb)
            x, y, docs = (
                t[rows].to(world.device) for t in (batch.input_ids, batch.targets, batch.document_ids)
            )
            n = int((y != -100).sum())
            with self._grad_sync(i == n_micro - 1), self.autocast:
                _, loss = self.model(x, y, document_ids=docs)
            (loss * (n * world.size / max(n_global, 1.0))).backward()
            total += float(loss.detach()) * n
        grad_norm = self._clip()
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        loss = float(all_sum(total, world)) / max(n_global, 1.0)
        if not math.isfinite(loss):
            raise UserError(
                f"the loss is {loss} at step {self.step + 1}; lower optimizer.lr or check the data"
            )
        return loss, grad_norm

    def _mix_source(self, tokens: Path, source: dict[str, Any], tokenizer: Any) -> MixSource:
        """A source of the mix for the loader: its training shards, probability and FIM mode."""
        folder, d = tokens / "train" / source["dir"], self.cfg.data
        drawn = source["probability"] > 0 and any(folder.glob("*.ds"))
        mode = source.get("fim", "repository")
        fim = Fim(tokenizer, d.fim_rate, d.fim_file_rate, d.fim_spm_rate, mode) if mode != "none" else None
        shards = TokenShards(folder) if drawn else None
        return MixSource(shards, source["probability"], fim, source["name"])

    @torch.no_grad()
    def evaluate(self) -> float | None:
        """Mean loss on the held-out repositories, left to right (no FIM), the same batches every time;
        with a mix, over all its sources, each source's own in ``eval_losses``."""
        sums = {name: self._evaluate(shards) for name, shards in self.valid.items()}
        sums = {name: s for name, s in sums.items() if s is not None}
        self.eval_losses = {name: total / count for name, (total, count) in sums.items()}
        if not sums:
            return None
        return sum(s[0] for s in sums.values()) / sum(s[1] for s in sums.values())

    def _evaluate(self, valid: TokenShards) -> tuple[float, float] | None:
        """The summed loss and target tokens of ``valid``'s evaluation batches. Every rank evaluates
        the same rows (as many as a micro-batch), so the figure does not depend on the number of
        ranks: split over ranks, a held-out source with fewer documents than ranks would be skipped
        on some world sizes and not others."""
        world, seq_len = self.world, self.cfg.data.seq_len
        lanes = min(self.cfg.training.micro_batch, len(valid))
        if lanes == 0 or valid.num_tokens == 0:
            return None
        loader = PackedLoader(valid, seq_len=seq_len, lanes=lanes, seed=self.cfg.training.seed)
        batches = min(self.cfg.eval.batches, max(1, valid.num_tokens // (lanes * seq_len)))
        self.model.eval()
        total = count = 0.0
        for _ in range(batches):
            b = loader.next_batch()
            with self.autocast:
                _, loss = self.model(
                    *(t.to(world.device) for t in (b.input_ids, b.targets)),
                    document_ids=b.document_ids.to(world.device),
                )
            total, count = total + float(loss) * b.tokens, count + b.tokens
        self.model.train()
        return total, count

    def load(self, checkpoint: Path) -> tuple[int, dict[str, Any]]:
        """Restore a checkpoint ``save`` wrote; returns the step and the loader state."""
        return load_checkpoint(checkpoint, self.model, self.optimizer, self.scheduler, self.read_weights)

    def save(self) -> Path:
        lanes: dict[str, Any] = {}
        for part in all_gather(self.loader.state_dict()["state"], self.world):
            lanes.update(part)
        state = {**self.loader.state_dict(), "state": lanes}
        return save_checkpoint(
            self.output,
            self.step,
            self.model,
            self.model_config,
            self.optimizer,
            self.scheduler,
            state,
            self.world,
            tokenizer_dir=self.tokenizer_dir,
            keep=self.cfg.checkpoint.keep,
            write_weights=self.write_weights,
        )

    def export(self) -> Path:
        """The final weights alone in ``OUTPUT/model``, what `stackcoder generate`, transformers and
        vLLM load."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        weights = get_model_state_dict(
            self.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
        )
        out = self.output / "model"
        if self.world.main:
            save_state(weights, self.model_config, out, tokenizer_dir=self.tokenizer_dir)
        return out

    # ---- helpers -------------------------------------------------------------------------------
    def _grad_sync(self, sync: bool) -> contextlib.AbstractContextManager:
        """Gradients are reduced across ranks on the last micro-batch only."""
        if self.world.size == 1 or sync:
            if hasattr(self.model, "set_requires_gradient_sync"):  # FSDP2
                self.model.set_requires_gradient_sync(True)
            return contextlib.nullcontext()
        if hasattr(self.model, "no_sync"):  # DDP
            return self.model.no_sync()
        self.model.set_requires_gradient_sync(False)
        return contextlib.nullcontext()

    def _clip(self) -> float:
        params = [p for p in self.model.parameters() if p.grad is not None]
        clip = self.cfg.optimizer.grad_clip
        norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))
        return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)

    def _record(self, loss: float, grad_norm: float, tokens_per_s: float) -> dict[str, Any]:
        mfu = self.flops_per_token * tokens_per_s / (self.peak * self.world.size) if self.peak else None
        return {
            "step": self.step,
            "loss": round(loss, 5),
            "lr": self.scheduler.get_last_lr()[0],
            "grad_norm": round(grad_norm, 4),
            "tokens": self.step * self.cfg.training.global_batch * self.cfg.data.seq_len,
            "tokens_per_s": round(tokens_per_s, 1),
            "mfu": round(mfu, 4) if mfu is not None else None,
            "epochs": self._epochs(),
        }

    def _epochs(self) -> dict[str, float]:
        """Per source, the epochs seen so far: documents read (all ranks) ÷ documents it holds."""
        read = all_sum(self.loader.documents_read(), self.world).tolist()
        return {
            src.name: round(n / len(src.shards), 4)
            for src, n in zip(self.loader.sources, read, strict=True)
            if src.shards is not None
        }

    def _line(self, r: dict[str, Any]) -> str:
        mfu = f"  MFU {100 * r['mfu']:.1f}%" if r["mfu"] is not None else ""
        return (
            f"step {r['step']:>6}/{self.cfg.training.max_steps}  loss {r['loss']:.4f}  lr {r['lr']:.2e}  "
            f"|g| {r['grad_norm']:.2f}  {r['tokens_per_s']:,.0f} tok/s{mfu}"
        )

    def _banner(self, resume: Path | None) -> str:
        c, t = self.model_config, self.cfg.training
        where = f"resuming from {resume.name}" if resume else "from scratch"
        return (
            f"training {c.num_parameters() / 1e6:.1f}M parameters on {self.world.size} × "
            f"{self.world.device.type}, "
            f"{self.loader.shards.num_tokens:,} tokens in {len(self.loader.shards)} documents; "
            f"{t.global_batch} × {self.cfg.data.seq_len} tokens per step, {t.max_steps} steps, {where}; "
            f"MFU against {self.peak / 1e12:.2f} TFLOP/s ({self.peak_source})"
        )

    def _say(self, text: str, bar: tqdm | None = None) -> None:
        if not self.world.main:
            return
        if bar is not None and self.show:
            bar.write(text, file=sys.stdout)
        else:
            print(text, flush=True)


def train(
    cfg: TrainConfig, output: str | Path, *, progress: bool = True, overwrite: bool = False
) -> TrainResult:
    try:
        return Trainer(cfg, output, progress=progress, overwrite=overwrite).train()
    finally:
        close_world()
