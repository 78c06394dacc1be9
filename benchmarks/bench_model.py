"""StarCoder2 on the CPU, ours vs transformers: training (forward+backward) tokens/s and peak memory, and
greedy generation tokens/s with the KV cache. Same config, same weights, same thread count, same run.

Every case runs in a fresh child process (so peak RSS is its own), ours and transformers alternating,
`--repeats` times each; the table reports the best repeat. Goals (issue 4): training >= 1.0x
transformers, generation >= 1.5x. Tokenizer throughput is benchmarks/bench_tokenizer.py.

    python benchmarks/bench_model.py                 # small@1024 and medium@2048, generation on small
    python benchmarks/bench_model.py --smoke         # tiny sizes, a few seconds: checks the script
    python benchmarks/bench_model.py --threads 8 --json out.json

Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))


def build(impl: str, size: str, vocab: int | None):
    """Our model with seeded random weights, or transformers' with a copy of the same weights."""
    import torch

    from stackcoder.model import Starcoder2, get_size

    cfg = get_size(size, **({"vocab_size": vocab} if vocab else {}))
    torch.manual_seed(0)
    model = Starcoder2(cfg)
    if impl == "transformers":
        import transformers

        theirs = transformers.Starcoder2ForCausalLM(transformers.Starcoder2Config(**cfg.to_hf_dict()))
        theirs.load_state_dict(model.state_dict())
        model = theirs
    return model, cfg


def train_case(impl: str, size: str, seq_len: int, steps: int, vocab: int | None) -> dict:
    import torch

    model, cfg = build(impl, size, vocab)
    model.train()
    x = torch.randint(0, cfg.vocab_size, (1, seq_len + 1), generator=torch.Generator().manual_seed(1))
    if impl == "ours":

        def loss_fn():
            return model(x[:, :-1], x[:, 1:])[1]
    else:

        def loss_fn():  # transformers shifts labels itself
            return model(input_ids=x[:, :-1], labels=x[:, :-1]).loss

    rss_before = reset_peak_rss()
    times = []
    for _ in range(steps + 1):  # the first step warms up allocators and kernels
        t = time.perf_counter()
        loss = loss_fn()
        loss.backward()
        model.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t)
    peak = peak_rss()
    best = min(times[1:])
    return {
        "tokens_per_s": seq_len / best,
        "step_s": best,
        "peak_rss_mib": peak / 2**20,
        "train_mib": (peak - rss_before) / 2**20,
        "loss": loss.item(),
    }


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def reset_peak_rss() -> int:
    """Reset the peak-RSS mark (Linux: clear_refs 5) so that what building the model needed (the
    transformers child holds two copies of the weights for a moment) does not count; returns RSS now."""
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def peak_rss() -> int:
    return _status("VmHWM")


def generate_case(
    impl: str, size: str, prompt_len: int, new_tokens: int, batch: int, vocab: int | None
) -> dict:
    import torch

    model, cfg = build(impl, size, vocab)
    model.eval()
    g = torch.Generator().manual_seed(2)
    prompts = torch.randint(1, cfg.vocab_size, (batch, prompt_len), generator=g)
    if impl == "ours":
        from stackcoder.model.generate import SamplingParams, generate

        def run(n):
            return generate(model, prompts.tolist(), SamplingParams(max_new_tokens=n))
    else:

        def run(n):
            with torch.inference_mode():
                out = model.generate(
                    prompts,
                    attention_mask=torch.ones_like(prompts),
                    max_new_tokens=n,
                    min_new_tokens=n,
                    do_sample=False,
                    eos_token_id=None,
                    pad_token_id=0,
                )
            return out[:, prompt_len:].tolist()

    run(4)  # warm-up
    t = time.perf_counter()
    out = run(new_tokens)
    elapsed = time.perf_counter() - t
    return {
        "tokens_per_s": batch * new_tokens / elapsed,
        "seconds": elapsed,
        "output_hash": hashlib.sha1(str(out).encode()).hexdigest()[:12],
    }


def child(argv: list[str]) -> None:
    import torch

    kind, impl, threads = argv[0], argv[1], int(argv[2])
    torch.set_num_threads(threads)
    rest = [int(a) if a.isdigit() else (None if a == "-" else a) for a in argv[3:]]
    result = train_case(impl, *rest) if kind == "train" else generate_case(impl, *rest)
    print(json.dumps(result))


def run_child(args: list) -> dict:
    cmd = [sys.executable, __file__, "--child", *map(str, args)]
    # a fixed mmap threshold: glibc then returns every large freed buffer to the OS at once, so RSS
    # follows live tensors (its default threshold adapts upwards and keeps freed memory mapped)
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(f"bench_model: child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def best_of(kind: str, case: list, threads: int, repeats: int) -> dict[str, dict]:
    runs: dict[str, list[dict]] = {"ours": [], "transformers": []}
    for r in range(repeats):
        order = ["ours", "transformers"] if r % 2 == 0 else ["transformers", "ours"]
        for impl in order:
            runs[impl].append(run_child([kind, impl, threads, *case]))
    return {impl: max(rs, key=lambda d: d["tokens_per_s"]) for impl, rs in runs.items()}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return 0
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--train", nargs="*", default=["small:1024", "medium:2048"], metavar="SIZE:SEQ")
    ap.add_argument("--steps", type=int, default=3, help="timed training steps per child (after one warm-up)")
    ap.add_argument(
        "--gen", nargs="*", default=["small:128:128:1", "small:128:64:4"], metavar="SIZE:PROMPT:NEW:BATCH"
    )
    ap.add_argument("--repeats", type=int, default=2, help="children per case and implementation")
    ap.add_argument("--vocab", type=int, help="override the vocabulary size (default: the preset's 49,152)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: checks the script")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()
    if args.smoke:
        args.train, args.gen, args.steps, args.repeats = ["debug:64"], ["debug:16:8:2"], 1, 1
        args.vocab = args.vocab or 512
    vocab = args.vocab or "-"
    rows, results = (
        [],
        {
            "threads": args.threads,
            "machine": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "train": {},
            "generate": {},
        },
    )
    for spec in args.train:
        size, seq = spec.split(":")
        r = best_of("train", [size, seq, args.steps, vocab], args.threads, args.repeats)
        results["train"][spec] = r
        o, t = r["ours"], r["transformers"]
        rows.append(
            f"| train fwd+bwd | {size} @ {seq} | {o['tokens_per_s']:.0f} | {t['tokens_per_s']:.0f} | "
            f"{o['tokens_per_s'] / t['tokens_per_s']:.2f}x | {o['peak_rss_mib']:.0f} / "
            f"{t['peak_rss_mib']:.0f} | {o['train_mib']:.0f} / {t['train_mib']:.0f} |"
        )
    for spec in args.gen:
        size, prompt, new, batch = spec.split(":")
        r = best_of("generate", [size, prompt, new, batch, vocab], args.threads, args.repeats)
        results["generate"][spec] = r
        o, t = r["ours"], r["transformers"]
        same = "same tokens" if o["output_hash"] == t["output_hash"] else "TOKENS DIFFER"
        rows.append(
            f"| generate greedy | {size}, prompt {prompt}, {new} new, batch {batch} | "
            f"{o['tokens_per_s']:.1f} | {t['tokens_per_s']:.1f} | "
            f"{o['tokens_per_s'] / t['tokens_per_s']:.2f}x | {same} | |"
        )
    print(f"threads={args.threads}, torch {torch.__version__}, {results['machine']}\n")
    print(
        "| measure | config | ours tokens/s | transformers tokens/s | ratio | peak RSS MiB (ours / tf) "
        "| training MiB (ours / tf) |"
    )
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
