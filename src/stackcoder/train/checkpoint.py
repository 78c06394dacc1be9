"""Training checkpoints: the weights in the Hugging Face layout (``transformers`` and vLLM load any of
them), plus what an exact resume needs: optimizer and scheduler state, the step, the RNG, and every
data lane's position.

    OUTPUT/checkpoints/step-00000200/   config.json, model.safetensors, tokenizer files,
                                        trainer_state.pt (optimizer, scheduler, step, RNG), loader.json

A checkpoint is written under a temporary name and renamed when complete, so a run killed while
saving leaves the previous checkpoint as the newest; resuming never sees half a checkpoint.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from safetensors.torch import load_file
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from stackcoder.atomic import replace_dir
from stackcoder.model.config import Starcoder2Config
from stackcoder.model.hf import save_state, weight_files
from stackcoder.train.parallel import World

CHECKPOINTS = "checkpoints"
TRAINER_STATE = "trainer_state.pt"
LOADER_STATE = "loader.json"
_FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def checkpoint_dir(output: Path, step: int) -> Path:
    return output / CHECKPOINTS / f"step-{step:08d}"


def latest_checkpoint(output: Path) -> Path | None:
    done = [p for p in sorted((output / CHECKPOINTS).glob("step-*")) if (p / TRAINER_STATE).is_file()]
    return done[-1] if done else None


def save_checkpoint(
    output: Path,
    step: int,
    model: nn.Module,
    config: Starcoder2Config,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loader_state: dict[str, Any],
    world: World,
    *,
    tokenizer_dir: Path,
    keep: int,
    write_weights: Callable[[Path], None] | None = None,
) -> Path:
    """``write_weights(dir)``, when given, writes the weights instead of the full HF-layout model
    (`stackcoder finetune`: the adapter alone); it runs on the main rank only."""
    # collective: every rank takes part in gathering the full (unsharded) state
    weights = get_model_state_dict(model, options=_FULL) if write_weights is None else {}
    optim = get_optimizer_state_dict(model, optimizer, options=_FULL)
    final = checkpoint_dir(output, step)
    if world.main:
        tmp = final.with_name(f".{final.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        if write_weights is None:
            save_state(weights, config, tmp, tokenizer_dir=tokenizer_dir)
        else:
            tmp.mkdir(parents=True)
            write_weights(tmp)
        (tmp / LOADER_STATE).write_text(json.dumps(loader_state, indent=1) + "\n")
        state = {
            "step": step,
            "optimizer": optim,
            "scheduler": scheduler.state_dict(),
            "rng": torch.get_rng_state(),
        }
        torch.save(state, tmp / TRAINER_STATE)
        replace_dir(tmp, final)
        for old in sorted((output / CHECKPOINTS).glob("step-*"))[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    if world.size > 1:
        dist.barrier()
    return final


def load_weights(path: Path, model: nn.Module) -> None:
    """The checkpoint's weights into ``model`` (plain, DDP or FSDP2), strictly: no name may be missing."""
    state: dict[str, torch.Tensor] = {}
    for file in sorted(set(weight_files(path).values())):
        state.update(load_file(file))
    if "lm_head.weight" not in state:  # tied: the released layout stores the embeddings only
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True, strict=True))


def load_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    read_weights: Callable[[Path], None] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Restore everything ``save_checkpoint`` wrote (the weights with ``read_weights(dir)`` when it
    wrote them with ``write_weights``); returns the step and the loader state."""
    if read_weights is None:
        load_weights(path, model)
    else:
        read_weights(path)
    state = torch.load(path / TRAINER_STATE, map_location="cpu", weights_only=False)
    set_optimizer_state_dict(
        model, optimizer, state["optimizer"], options=StateDictOptions(full_state_dict=True)
    )
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    return int(state["step"]), json.loads((path / LOADER_STATE).read_text())
