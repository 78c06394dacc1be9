"""What a run reports: a JSONL log (one line per logged step, one per evaluation), the live progress
line, model FLOPs utilisation, and a loss-curve PNG."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from stackcoder.model.config import Starcoder2Config

# bf16 dense peak (no sparsity) by device name; H100 SXM and H200 share the H100's compute
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "H800": 989.0, "A100": 312.0, "A800": 312.0, "L40S": 362.0}


def flops_per_token(cfg: Starcoder2Config, seq_len: int) -> float:
    """Training FLOPs per token: 6 per parameter (forward and backward) plus attention's scores and
    values over the keys a query sees (the window, when shorter than the sequence)."""
    embedding = cfg.vocab_size * cfg.hidden_size
    dense = cfg.num_parameters() - embedding * (1 if cfg.tie_word_embeddings else 2)
    window = min(seq_len, cfg.sliding_window or seq_len)
    return 6 * (dense + embedding) + 12 * cfg.num_hidden_layers * cfg.hidden_size * window


def peak_flops(
    device: torch.device, override_tflops: float | None = None, dtype: torch.dtype = torch.float32
) -> tuple[float, str]:
    """The FLOP/s that MFU divides by, and where it comes from. A GPU: its bf16 spec. The CPU has no
    spec we can read, so it is this machine's measured matmul rate in `dtype` (fp32 for `train`, bf16
    for a bf16 finetune base: AMX makes it several times fp32's) on all its threads (an upper bound
    real kernels approach, not a datasheet number)."""
    if override_tflops:
        return override_tflops * 1e12, "configured"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, value in PEAK_TFLOPS.items():
            if key in name:
                return value * 1e12, f"{key} bf16 spec"
        return 0.0, f"unknown ({name}); set log.peak_tflops"
    a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(5):  # best of a few: the rate this machine reaches, not what a busy moment allows
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    name = {torch.float32: "fp32", torch.bfloat16: "bf16"}.get(dtype, str(dtype))
    return 2 * 2048**3 / best, f"measured CPU {name} matmul"


class MetricsLog:
    """``metrics.jsonl``, kept in step with the checkpoints: resuming at step s drops later lines."""

    def __init__(self, path: Path, enabled: bool, resume_step: int | None):
        self.path, self.enabled = path, enabled
        self.records: list[dict[str, Any]] = []
        if enabled and path.is_file():
            lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            self.records = [r for r in lines if resume_step is not None and r["step"] <= resume_step]
            path.write_text("".join(json.dumps(r) + "\n" for r in self.records))

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.records.append(record)
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def plot(self, png: Path) -> Path | None:
        if not self.enabled or not self.records:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        train = [r for r in self.records if "loss" in r]
        evals = [r for r in self.records if "eval_loss" in r]
        fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss", lw=1.2)
        if evals:
            ax.plot([r["step"] for r in evals], [r["eval_loss"] for r in evals], "o-", label="held-out loss")
        ax.set_xlabel("step")
        ax.set_ylabel("cross-entropy (nats/token)")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(png)
        plt.close(fig)
        return png
