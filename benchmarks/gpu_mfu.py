"""bf16 training MFU of a ~1.2B StarCoder2-shaped model at 4,096 tokens per sequence, on one CUDA GPU.

Trains on random tokens for `--seconds` per implementation (stackcoder's model, then transformers'
Starcoder2ForCausalLM on the same config), with fp32 master weights under bf16 autocast, fused AdamW,
torch.compile (unless --no-compile) and flash-attn when it is installed (else PyTorch SDPA). Prints one
JSON line per implementation: tokens/s, achieved TFLOPS and MFU against the GPU's bf16 dense peak
(H100/H200: 989 TFLOPS). The goal is >= 45% (torchtitan reports ~57% for Llama-3 8B on H100s).

Needs only torch and transformers (stackcoder is imported from this checkout's src/). About 5 minutes
on one H100 with the defaults:

    python benchmarks/gpu_mfu.py                   # both implementations
    python benchmarks/gpu_mfu.py --only stackcoder --seconds 30 --batch 2
    python benchmarks/gpu_mfu.py --smoke           # CPU, tiny config: checks the script, no figures

FLOPs per token (the PaLM / torchtitan convention, causal attention counted in full):
6 * (non-embedding parameters + the lm_head matmul) + 12 * layers * hidden * seq_len.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

from stackcoder.model.attention import pick_attn_impl  # noqa: E402
from stackcoder.model.config import Starcoder2Config, get_size  # noqa: E402
from stackcoder.model.model import Starcoder2  # noqa: E402
from stackcoder.train.metrics import PEAK_TFLOPS, flops_per_token  # noqa: E402


def peak_tflops(name: str, override: float | None) -> float:
    if override:
        return override
    for key, value in PEAK_TFLOPS.items():
        if key in name:
            return value
    raise SystemExit(f"gpu_mfu: unknown peak for {name!r}; pass --peak-tflops")


def build(impl: str, cfg: Starcoder2Config, device: torch.device) -> tuple[torch.nn.Module, str, object]:
    """The model, the attention kernel it uses, and a step function returning the loss."""
    if impl == "stackcoder":
        model = Starcoder2(cfg).to(device)
        model.attn_impl = pick_attn_impl(device)

        def loss_fn(m, x):
            return m(x[:, :-1], x[:, 1:])[1]

        return model, model.attn_impl, loss_fn
    import transformers

    try:
        import flash_attn  # noqa: F401

        attn = "flash_attention_2" if device.type == "cuda" else "sdpa"
    except ImportError:
        attn = "sdpa"
    hf_cfg = transformers.Starcoder2Config(**cfg.to_hf_dict())
    model = transformers.AutoModelForCausalLM.from_config(hf_cfg, attn_implementation=attn).to(device)

    def loss_fn(m, x):
        return m(input_ids=x[:, :-1], labels=x[:, :-1]).loss

    return model, attn, loss_fn


def measure(impl: str, cfg: Starcoder2Config, args: argparse.Namespace, device: torch.device) -> dict:
    torch.manual_seed(0)
    model, attn, loss_fn = build(impl, cfg, device)
    model.train()
    fused = device.type == "cuda"
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1, fused=fused)
    step_fn = torch.compile(loss_fn) if args.compile else loss_fn
    batch = args.batch
    autocast = torch.autocast(device.type, dtype=torch.bfloat16)

    def step() -> torch.Tensor:
        x = torch.randint(0, cfg.vocab_size, (batch, args.seq_len + 1), device=device)
        with autocast:
            loss = step_fn(model, x)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    while True:  # warm up (compiles); halve the batch on OOM rather than give no figure at all
        try:
            t = time.perf_counter()
            for _ in range(args.warmup):
                step()
            sync(device)
            warmup_s = time.perf_counter() - t
            break
        except torch.cuda.OutOfMemoryError:
            if batch == 1:
                raise
            batch //= 2
            opt.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()
            print(f"gpu_mfu: {impl}: out of memory, batch -> {batch}", file=sys.stderr)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    steps, t0 = 0, time.perf_counter()
    while steps < args.min_steps or time.perf_counter() - t0 < args.seconds:
        loss = step()
        steps += 1
        if steps % 10 == 0:
            sync(device)
    sync(device)
    elapsed = time.perf_counter() - t0
    tokens_per_s = batch * args.seq_len * steps / elapsed
    tflops = tokens_per_s * flops_per_token(cfg, args.seq_len) / 1e12
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = peak_tflops(name, args.peak_tflops) if device.type == "cuda" else None
    result = {
        "impl": impl,
        "device": name,
        "attn": attn,
        "compile": args.compile,
        "params": cfg.num_parameters(),
        "layers": cfg.num_hidden_layers,
        "hidden": cfg.hidden_size,
        "batch": batch,
        "seq_len": args.seq_len,
        "steps": steps,
        "seconds": round(elapsed, 1),
        "warmup_s": round(warmup_s, 1),
        "tokens_per_s": round(tokens_per_s),
        "tflops": round(tflops, 1),
        "mfu": round(tflops / peak, 4) if peak else None,
        "peak_tflops": peak,
        "final_loss": round(loss.item(), 3),
        "peak_mem_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 1) if fused else None,
    }
    return result


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=["stackcoder", "transformers"], help="measure one implementation")
    ap.add_argument("--seconds", type=float, default=45.0, help="timed training per implementation")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation happens here)")
    ap.add_argument("--min-steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=4, help="sequences per step (halved on OOM)")
    ap.add_argument("--seq-len", type=int, default=4096)
    ap.add_argument("--no-compile", dest="compile", action="store_false")
    ap.add_argument("--peak-tflops", type=float, help="bf16 dense peak, if the GPU is not in the table")
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny config, 2 steps: checks the script")
    args = ap.parse_args()
    if args.smoke:
        cfg, device = get_size("debug", vocab_size=512), torch.device("cpu")
        args.seconds, args.warmup, args.min_steps, args.batch, args.seq_len = 0.0, 1, 2, 2, 64
        args.compile = False
    else:
        if not torch.cuda.is_available():
            print(
                "gpu_mfu: no CUDA GPU here (torch.cuda.is_available() is False); this benchmark needs "
                "one. Use --smoke to check the script on a CPU.",
                file=sys.stderr,
            )
            return 2
        cfg, device = get_size("1b"), torch.device("cuda")
        torch.backends.cuda.matmul.allow_tf32 = True
    impls = [args.only] if args.only else ["stackcoder", "transformers"]
    for impl in impls:
        try:
            result = measure(impl, cfg, args, device)
        except ImportError as e:
            result = {"impl": impl, "error": f"not installed: {e}"}
        print(json.dumps(result), flush=True)
        gc.collect()  # the model and optimizer of this implementation go before the next one starts
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
