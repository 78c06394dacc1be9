"""On a CUDA GPU: `stackcoder train` with the ~113M-parameter `m100` preset for a few minutes, and its
tokens/s and MFU (bf16 autocast, flash-attn when installed, else SDPA).

The GPU machine has no network, so the data is made from real code already on disk: the Python
files of the installed packages (torch, transformers, numpy, …), one "repository" per package
directory, rendered as StarCoder2 documents and tokenized with a 49,152-token BPE trained on them.
Prepare on any machine, then train where the GPU is (the shards are small enough to carry):

    python benchmarks/gpu_train.py prepare --output /tmp/gpu-data          # CPU, a minute or two
    python benchmarks/gpu_train.py train --data /tmp/gpu-data --steps 300  # GPU, a few minutes
    python benchmarks/gpu_train.py train --data /tmp/gpu-data --compile    # the same, torch.compile
    python benchmarks/gpu_train.py smoke                                   # CPU: both, tiny

`train` prints one JSON line: tokens/s and MFU (median over logged steps after the first), first and
last loss, peak GPU memory.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import sysconfig
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def package_repositories(max_bytes: int, min_files: int = 5) -> dict[str, list[tuple[str, str]]]:
    """{repo_name: [(path, text)]}: each package directory under site-packages (its subpackages
    separately, when it has them, so there are many repositories) with its .py files."""
    site = Path(sysconfig.get_paths()["purelib"])
    repos: dict[str, list[tuple[str, str]]] = {}
    total = 0
    for pkg in sorted(p for p in site.iterdir() if p.is_dir() and (p / "__init__.py").is_file()):
        groups = [pkg] + sorted(d for d in pkg.iterdir() if d.is_dir() and (d / "__init__.py").is_file())
        for group in groups:
            files = sorted(group.glob("*.py")) if group is pkg else sorted(group.rglob("*.py"))
            texts = []
            for f in files:
                try:
                    text = f.read_text("utf-8")
                except (UnicodeDecodeError, OSError):
                    continue
                if 0 < len(text) < 200_000:
                    texts.append((str(f.relative_to(site)), text))
            if len(texts) >= min_files:
                repos[f"site-packages/{group.relative_to(site).as_posix().replace('/', '.')}"] = texts
                total += sum(len(t) for _, t in texts)
            if total >= max_bytes:
                return repos
    return repos


def prepare(output: Path, max_bytes: int, vocab_size: int) -> dict:
    from stackcoder.tokenizer.files import save_tokenizer
    from stackcoder.tokenizer.special_tokens import EOS, FILE_SEP, REPO_NAME
    from stackcoder.tokenizer.train_bpe import train_tokenizer

    repos = package_repositories(max_bytes)
    rng = np.random.default_rng(0)
    documents = []
    for name, files in repos.items():  # the recipe's format: metadata with probability 0.5
        order = rng.permutation(len(files))
        if rng.random() < 0.5:
            documents.append(
                f"{REPO_NAME}{name}" + "".join(f"{FILE_SEP}{files[i][0]}\n{files[i][1]}" for i in order) + EOS
            )
        else:
            documents.append("".join(f"{FILE_SEP}{files[i][1]}" for i in order) + EOS)
    tok = train_tokenizer(documents, vocab_size=vocab_size)
    save_tokenizer(tok, output / "tokenizer")
    dtype = np.uint16 if tok.get_vocab_size() <= 2**16 else np.uint32
    held_out = set(rng.choice(len(documents), size=max(1, len(documents) // 50), replace=False).tolist())
    counts = {}
    for split in ("train", "valid"):
        ids = [
            tok.encode(d, add_special_tokens=False).ids
            for i, d in enumerate(documents)
            if (i in held_out) == (split == "valid")
        ]
        folder = output / "tokens" / split
        folder.mkdir(parents=True, exist_ok=True)
        # datatrove's layout, as `stackcoder tokenize` writes it
        np.concatenate([np.asarray(x, dtype=dtype) for x in ids]).tofile(folder / "00000.ds")
        np.cumsum([len(x) for x in ids], dtype=np.uint64).astype("<u8").tofile(folder / "00000.ds.index")
        (folder / "00000.ds.metadata").write_text(f"{output / 'tokenizer'}|{np.dtype(dtype).itemsize}\n")
        counts[split] = {"documents": len(ids), "tokens": int(sum(map(len, ids)))}
    info = {
        "tokenizer": str((output / "tokenizer").resolve()),
        "token_bytes": np.dtype(dtype).itemsize,
        **counts,
    }
    (output / "tokens" / "tokens.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def run_training(data: Path, output: Path, preset: str, steps: int, overrides: dict) -> dict:
    from stackcoder.train.config import apply
    from stackcoder.train.presets import get_preset
    from stackcoder.train.trainer import train

    values = {
        "data": {"path": str(data / "tokens")},
        "training": {"max_steps": steps},
        "optimizer": {"warmup_steps": max(1, steps // 10)},
        "log": {"every": max(1, steps // 30)},
        "eval": {"every": 0},
        "checkpoint": {"every": 0},
    }
    for section, fields in overrides.items():
        values.setdefault(section, {}).update(fields)
    cfg = apply(get_preset(preset), values, "gpu_train")
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = train(cfg, output, progress=False, overwrite=True)
    seconds = time.perf_counter() - start
    records = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    steps_logged = [r for r in records if "loss" in r][1:] or [r for r in records if "loss" in r]
    mfu = [r["mfu"] for r in steps_logged if r["mfu"] is not None]
    return {
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "preset": preset,
        "steps": result.step,
        "seconds": round(seconds, 1),
        "tokens_per_s": round(statistics.median(r["tokens_per_s"] for r in steps_logged), 1),
        "mfu": round(statistics.median(mfu), 4) if mfu else None,
        "first_loss": records[0]["loss"],
        "last_loss": result.loss,
        "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)
        if torch.cuda.is_available()
        else None,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="token shards from the installed packages' Python files")
    p.add_argument("--output", required=True, type=Path)
    p.add_argument("--max-mb", type=float, default=60.0, help="text to collect (default: %(default)s MB)")
    p.add_argument("--vocab-size", type=int, default=49_152)
    t = sub.add_parser("train", help="train the m100 preset on prepared shards (needs CUDA unless --cpu)")
    t.add_argument("--data", required=True, type=Path)
    t.add_argument("--output", type=Path, default=Path("/tmp/gpu-train-run"))
    t.add_argument("--steps", type=int, default=300)
    t.add_argument("--micro-batch", type=int, default=None, help="rows per forward (default: the preset's)")
    t.add_argument("--cpu", action="store_true", help="allow running without CUDA")
    t.add_argument("--compile", action="store_true", help="torch.compile the model (training.compile)")
    sub.add_parser("smoke", help="prepare a little and train the debug size for a few steps, on the CPU")
    args = ap.parse_args()

    if args.cmd == "prepare":
        print(json.dumps(prepare(args.output, int(args.max_mb * 1e6), args.vocab_size)))
    elif args.cmd == "train":
        if not torch.cuda.is_available() and not args.cpu:
            raise SystemExit("gpu_train: no CUDA device (use `smoke`, or --cpu to run anyway)")
        overrides: dict = {"training": {"micro_batch": args.micro_batch}} if args.micro_batch else {}
        if args.compile:
            overrides.setdefault("training", {})["compile"] = True
        print(json.dumps(run_training(args.data, args.output, "m100", args.steps, overrides)))
    else:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            info = prepare(Path(tmp), 3_000_000, 1_000)
            small = {"data": {"seq_len": 64}, "training": {"global_batch": 4, "micro_batch": 2}}
            result = run_training(Path(tmp), Path(tmp) / "run", "debug", 4, small)
            print(json.dumps({"prepared": info["train"], **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
