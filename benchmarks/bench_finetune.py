"""Does `stackcoder finetune` help? LoRA on a base trained here (the demo model: the demo corpus's Python,
JavaScript, Go, Rust, ... packages) with a disjoint set of real repositories in a language the demo has
none of: 15 Ruby gems from Debian 12 (benchmarks/finetune_corpus.toml, pinned by sha256), built with
`stackcoder build` and tokenized with the base's tokenizer, 20% of the repositories held out.

Measured, base vs adapted: perplexity on the new held-out repositories (goal: adapted <= 0.8x base), FIM
exact match on them with and without repository context (goal: up), and the held-out loss on the
base's own held-out repositories (forgetting, goal: <= 5% higher); the run's trainable parameters,
tokens/s and peak RSS. Then one LoRA step at the 3B shape (hidden 3072, FFN 12288, 24/2 heads, vocab
49,152) with sequence 512 and gradient checkpointing: peak RSS and seconds per step, bf16 and int8
bases. The 3B shape is built with few layers (--shape-layers, default 2 and 4, and a line through the
two points extrapolates to 30) so that it runs beside other work; `--shape-layers 30` is the full 3B (6 GB
of bf16 weights plus activations): run that on a quiet machine.

    python benchmarks/bench_finetune.py --base out/demo/run/model --base-dataset out/demo --out /tmp/ftbench
    python benchmarks/bench_finetune.py ... --only shape --shape-layers 30      # the full 3B step

Prints a Markdown table for docs/finetune.md; ``--json FILE`` writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

CORPUS = Path(__file__).with_name("finetune_corpus.toml")


def stackcoder(*args: str, log: Path) -> tuple[float, int]:
    """Run a stackcoder verb in a child process; its wall seconds and peak RSS (bytes, from wait4)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    start = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "stackcoder", *args], env=env, stdout=f, stderr=f)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(
            f"stackcoder {args[0]} failed ({proc.returncode}); see {log}:\n{log.read_text()[-2000:]}"
        )
    return time.perf_counter() - start, usage.ru_maxrss * 1024


def train_base(dataset: Path, steps: int, out: Path) -> Path:
    """A larger CPU base than the demo's: the `small` size (15M) on the same demo corpus, `steps` steps of
    8 x 512 tokens with bf16 autocast (a rerun resumes, or returns the finished model)."""
    run = out / "base-small"
    if (run / "model" / "config.json").is_file():
        return run / "model"
    conf = out / "base.toml"
    conf.write_text(
        'preset = "cpu_small"\n[training]\ndtype = "bfloat16"\n[eval]\nevery = 250\n'
        "[checkpoint]\nevery = 250\n[log]\nevery = 25\n"
    )
    stackcoder(
        "train",
        "--config",
        str(conf),
        "--data",
        str(dataset / "tokens"),
        "--max-steps",
        str(steps),
        "--output",
        str(run),
        "--no-progress",
        log=out / "base-small.log",
    )
    return run / "model"


def corpus(out: Path, base: Path) -> Path:
    """The Ruby dataset: downloaded (cached), built, tokenized with the base's tokenizer."""
    from stackcoder.data.demo.download import download_corpus
    from stackcoder.data.demo.manifest import load_manifest

    cache = download_corpus(
        Path("~/.cache/stackcoder/finetune-bench").expanduser(),
        packages=load_manifest(CORPUS),
        progress=False,
    )
    dataset = out / "ruby"
    if not (dataset / "build.json").is_file():
        stackcoder(
            "build",
            "--repos-dir",
            str(cache / "repos"),
            "--repo-metadata",
            str(cache / "repo_metadata.jsonl"),
            "--output",
            str(dataset),
            "-q",
            log=out / "build.log",
        )
    tokens = dataset / "tokens" / "tokens.json"
    made_with = json.loads(tokens.read_text())["tokenizer"] if tokens.is_file() else None
    if made_with != str((base / "tokenizer.json").resolve()):
        stackcoder(
            "tokenize",
            str(dataset),
            "--tokenizer",
            str(base),
            "--valid-fraction",
            "0.2",
            "--overwrite",
            "-q",
            log=out / "tokenize.log",
        )
    return dataset


def evaluate(base: Path, adapter: Path | None, dataset: Path, fim_examples: int) -> dict:
    from stackcoder.eval import fim, perplexity
    from stackcoder.eval.backends import LocalModel

    backend = LocalModel(str(base), device="cpu", adapter=str(adapter) if adapter else None)
    out = {"perplexity": perplexity.run(str(dataset), backend)["scores"]["perplexity"]}
    if fim_examples:
        out["fim"] = fim.run(str(dataset), backend, per_mode=fim_examples)["scores"]
        out["fim_middle_loss"] = fim_middle_loss(backend, dataset, fim_examples)
    return out


@torch.inference_mode()
def fim_middle_loss(backend, dataset: Path, per_mode: int) -> dict[str, float]:  # noqa: ANN001
    """Mean loss (nats/token) of the true middle after the FIM prompt, on the FIM task's own examples and
    prompts: the task's likelihood, which moves where exact match of a small model stays at zero."""
    from stackcoder.eval import fim
    from stackcoder.tokenizer.files import encode

    model, tok = backend.model, backend.tokenizer
    budget = min(4000, backend.context * 2)  # as fim.run does
    out = {}
    for context in fim.CONTEXTS:
        for mode in fim.MODES:
            nll = count = 0.0
            for e in (e for e in fim.examples(str(dataset), per_mode) if e.mode == mode):
                head = encode(tok, fim.prompt(e, context, budget))
                middle = encode(tok, e.middle)
                ids = (head + middle)[-backend.context :]
                x = torch.tensor([ids[:-1]])
                y = torch.tensor([ids[1:]])
                y[:, : len(ids) - 1 - len(middle)] = -100  # score the middle only
                _, loss = model(x, y)
                nll, count = nll + float(loss) * len(middle), count + len(middle)
            out[f"{mode}/{context}"] = round(nll / count, 4)
    return out


def finetune_run(base: Path, dataset: Path, out: Path, args: argparse.Namespace) -> dict:
    run = out / "run"
    seconds, rss = stackcoder(
        "finetune",
        "--model",
        str(base),
        "--data",
        str(dataset),
        "--output",
        str(run),
        "--overwrite",
        "--seq-len",
        str(args.seq_len),
        "--global-batch",
        "8",
        "--micro-batch",
        "4",
        "--max-steps",
        str(args.steps),
        "--lr",
        str(args.lr),
        "--warmup-steps",
        "10",
        "--eval-every",
        str(args.steps // 3),
        "--log-every",
        "10",
        "--no-progress",
        log=out / "finetune.log",
    )
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if "loss" in r]
    # each record's rate covers the steps since the previous one: time = tokens / rate per window
    windows = list(zip([{"tokens": 0}, *train[:-1]], train, strict=True))
    train_seconds = sum((b["tokens"] - a["tokens"]) / b["tokens_per_s"] for a, b in windows)
    banner = (out / "finetune.log").read_text().split("fine-tuning ", 1)[1]
    return {
        "adapter": str(run / "adapter"),
        "trainable_parameters": int(banner.split(" LoRA", 1)[0].replace(",", "")),
        "tokens": train[-1]["tokens"],
        "tokens_per_s": round(train[-1]["tokens"] / train_seconds, 1),
        "wall_seconds": round(seconds, 1),
        "peak_rss_gb": round(rss / 1e9, 2),
        "first_loss": train[0]["loss"],
        "last_loss": train[-1]["loss"],
        "eval_losses": {r["step"]: r["eval_loss"] for r in records if "eval_loss" in r},
    }


def shape_3b(path: Path, layers: int, tokenizer: Path) -> Path:
    """A checkpoint of the 3B's widths with `layers` blocks, random bf16 weights, and `tokenizer`."""
    from stackcoder.model import Starcoder2, get_size
    from stackcoder.model.hf import save_model

    if (path / "config.json").is_file():  # save_model writes it after the weights
        return path
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)  # built in bf16 from the start: 6 GB at 30 layers, not 12 + 6
    try:
        with torch.device("meta"):
            model = Starcoder2(get_size("3b", num_hidden_layers=layers))
    finally:
        torch.set_default_dtype(torch.float32)
    model = model.to_empty(device="cpu")
    model.reset_parameters()
    return save_model(model, path, tokenizer_dir=tokenizer)


def shape_step(base: Path, layers: int, dataset: Path, out: Path, quantize: str | None) -> dict:
    """Three LoRA steps of one 512-token row with gradient checkpointing: seconds per step (steps 2-3)
    and the process's peak RSS."""
    ckpt = shape_3b(out / f"shape-3b-{layers}", layers, base)
    run = out / f"shape-run-{layers}-{quantize or 'bf16'}"
    conf = out / "shape.toml"
    conf.write_text("[eval]\nbatches = 1\n")
    extra = ["--quantize", quantize] if quantize else []
    _, rss = stackcoder(
        "finetune",
        "--model",
        str(ckpt),
        "--data",
        str(dataset),
        "--output",
        str(run),
        "--overwrite",
        "--config",
        str(conf),
        "--seq-len",
        "512",
        "--global-batch",
        "1",
        "--micro-batch",
        "1",
        "--max-steps",
        "3",
        "--gradient-checkpointing",
        "--log-every",
        "1",
        "--eval-every",
        "0",
        "--no-progress",
        *extra,
        log=out / f"{run.name}.log",
    )
    rates = [
        json.loads(line)["tokens_per_s"]
        for line in (run / "metrics.jsonl").read_text().splitlines()
        if '"loss"' in line
    ]
    return {
        "layers": layers,
        "base": quantize or "bf16",
        "seconds_per_step": round(sum(512 / r for r in rates[1:]) / len(rates[1:]), 2),
        "first_step_seconds": round(512 / rates[0], 2),
        "peak_rss_gb": round(rss / 1e9, 2),
    }


def extrapolate(rows: list[dict], layers: int) -> list[dict]:
    """Seconds per step and peak RSS at `layers` blocks, from a line through two measured layer counts
    (each block adds the same weights and work; the embeddings and the loss are the intercept)."""
    out = []
    for base in dict.fromkeys(r["base"] for r in rows):
        pts = sorted((r["layers"], r) for r in rows if r["base"] == base)
        if len(pts) < 2 or pts[0][0] == pts[-1][0] or any(n >= layers for n, _ in pts):
            continue
        (n0, a), (n1, b) = pts[0], pts[-1]
        row = {"layers": layers, "base": base, "extrapolated_from": [n0, n1]}
        for key in ("seconds_per_step", "peak_rss_gb"):
            row[key] = round(a[key] + (b[key] - a[key]) * (layers - n0) / (n1 - n0), 2)
        out.append(row)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", type=Path, default=ROOT / "out/demo/run/model", help="the base checkpoint")
    ap.add_argument(
        "--base-dataset", type=Path, default=ROOT / "out/demo", help="the base's dataset (forgetting)"
    )
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench-finetune"))
    ap.add_argument(
        "--train-base",
        type=int,
        metavar="STEPS",
        help="train a larger base (the small size) on --base-dataset for STEPS steps and use it as --base",
    )
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--fim-examples", type=int, default=60, help="spans per FIM mode (single, multi)")
    ap.add_argument(
        "--shape-layers",
        type=int,
        nargs="+",
        default=[2, 4],
        help="blocks of the 3B-shape check (30: full 3B)",
    )
    ap.add_argument("--only", choices=["helps", "shape"], help="one part only")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.train_base:
        args.base = train_base(args.base_dataset, args.train_base, args.out)
    result: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "torch": torch.__version__,
    }
    dataset = corpus(args.out, args.base)
    if args.only != "shape":
        base_new = evaluate(args.base, None, dataset, args.fim_examples)
        base_own = evaluate(args.base, None, args.base_dataset, 0)
        run = finetune_run(args.base, dataset, args.out, args)
        adapted = Path(run["adapter"])
        new = evaluate(args.base, adapted, dataset, args.fim_examples)
        own = evaluate(args.base, adapted, args.base_dataset, 0)
        result["helps"] = {
            "run": run,
            "base": {"new": base_new, "own": base_own},
            "adapted": {"new": new, "own": own},
            "perplexity_ratio_new": round(new["perplexity"] / base_new["perplexity"], 3),
            # forgetting: the rise of the held-out loss (log perplexity) on the base's own repositories
            "forgetting": round(math.log(own["perplexity"]) / math.log(base_own["perplexity"]) - 1, 4),
        }
    if args.only != "helps":
        result["shape_3b"] = [
            shape_step(args.base, n, dataset, args.out, q) for q in (None, "int8") for n in args.shape_layers
        ]
        result["shape_3b_extrapolated"] = extrapolate(result["shape_3b"], 30)
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


def markdown(r: dict) -> str:
    lines = [f"machine: {r['machine']}, torch {r['torch']}", ""]
    if "helps" in r:
        h, run = r["helps"], r["helps"]["run"]
        b, a = h["base"], h["adapted"]
        lines += ["| | base | adapted | |", "|---|---|---|---|"]
        lines.append(
            f"| perplexity, Ruby held-out repositories | {b['new']['perplexity']:.1f} | "
            f"{a['new']['perplexity']:.1f} | × {h['perplexity_ratio_new']} (goal ≤ 0.8) |"
        )
        for key in sorted(b["new"].get("fim", {})):
            if key.startswith("exact_match@"):
                what = key.removeprefix("exact_match@").replace("/", ", ").replace("_", " ")
                before, after = b["new"]["fim"][key], a["new"]["fim"][key]
                lines.append(f"| FIM exact match ({what}) | {before:.3f} | {after:.3f} | |")
        for key in sorted(b["new"].get("fim_middle_loss", {})):
            before, after = b["new"]["fim_middle_loss"][key], a["new"]["fim_middle_loss"][key]
            what = key.replace("/", ", ").replace("_", " ")
            lines.append(
                f"| FIM: loss of the true middle, nats/token ({what}) | {before:.3f} | {after:.3f} | |"
            )
        lines.append(
            f"| perplexity, the base's own held-out repositories | {b['own']['perplexity']:.1f} | "
            f"{a['own']['perplexity']:.1f} | loss +{100 * h['forgetting']:.1f}% (goal ≤ 5%) |"
        )
        lines += [
            "",
            f"LoRA run: {run['trainable_parameters']:,} trainable parameters, {run['tokens']:,} tokens, "
            f"{run['tokens_per_s']:,.0f} tokens/s, {run['wall_seconds']:.0f} s wall (with evaluations), "
            f"peak RSS {run['peak_rss_gb']} GB; held-out loss by step {run['eval_losses']}",
        ]
    if "shape_3b" in r:
        lines += [
            "",
            "| 3B shape, seq 512, gradient checkpointing | layers | s/step | first step s | peak RSS GB |",
            "|---|---|---|---|---|",
        ]
        for s in r["shape_3b"]:
            lines.append(
                f"| {s['base']} base | {s['layers']} | {s['seconds_per_step']} | "
                f"{s['first_step_seconds']} | {s['peak_rss_gb']} |"
            )
        for s in r.get("shape_3b_extrapolated", []):
            lines.append(
                f"| {s['base']} base, extrapolated from {s['extrapolated_from']} layers | {s['layers']} | "
                f"~{s['seconds_per_step']} | | ~{s['peak_rss_gb']} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
