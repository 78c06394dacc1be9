"""Data parallelism under ``torchrun``: the process group, and DDP or FSDP2 applied to a model from
outside (the model code knows nothing of ranks). One process without ``torchrun`` is world size 1."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from stackcoder.errors import UserError
from stackcoder.model.hf import pick_device


@dataclass(frozen=True)
class World:
    rank: int
    size: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_world(device: str = "auto") -> World:
    """Join ``torchrun``'s process group (NCCL on CUDA, gloo on the CPU), or run alone."""
    device = pick_device(device)
    size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError("training.device is cuda but no CUDA device is available")
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device(device)
    if size > 1 and not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if dev.type == "cuda" else "gloo", device_id=dev if dev.type == "cuda" else None
        )
    return World(rank, size, dev)


def close_world() -> None:
    if dist.is_initialized():
        dist.barrier()  # no rank tears the group down while another still writes the final model
        dist.destroy_process_group()


def parallelize(model: nn.Module, world: World, mode: str) -> nn.Module:
    """DDP (a full copy per rank), or FSDP2 (each block's parameters sharded over the ranks, gathered
    for its forward and backward) for models that do not fit one device. Returns the model to train."""
    if world.size == 1:
        return model
    if mode == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(
            model, device_ids=[world.device.index] if world.device.type == "cuda" else None
        )
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(world.device.type, (world.size,))
    for block in model.model.layers:  # innermost first, then the rest (embeddings, norm, lm_head)
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def all_sum(value: float | torch.Tensor, world: World) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float64, device=world.device).clone()
    if world.size > 1:
        dist.all_reduce(t)
    return t


def all_gather(obj: object, world: World) -> list[object]:
    if world.size == 1:
        return [obj]
    out: list[object] = [None] * world.size
    dist.all_gather_object(out, obj)
    return out
