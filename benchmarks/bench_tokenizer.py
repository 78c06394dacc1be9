"""Tokenizer throughput: training MB/s, and encode MB/s and tokens/s, ours vs transformers.

"Ours" is the ``tokenizers.Tokenizer`` that ``stackcoder.tokenizer.train_bpe`` trains and ``files`` loads
(``encode_batch``, the path the data pipeline takes); the reference is the same saved directory loaded
with ``transformers.AutoTokenizer`` and called on the batch (``tok(texts)``), which is how most
training code encodes. Both get the same texts and must return the same ids.

    python benchmarks/bench_tokenizer.py                          # installed packages' files, small run
    python benchmarks/bench_tokenizer.py --data DATASET_DIR --train-bytes 200M --encode-bytes 100M
    python benchmarks/bench_tokenizer.py --data DIR --tokenizer path/to/starcoder2/tokenizer.json

Prints a Markdown table for docs/benchmarks.md and, with ``--json``, writes the numbers and settings.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from stackcoder.data.corpus import Corpus
from stackcoder.tokenizer.files import encode_batch, load_tokenizer, save_tokenizer
from stackcoder.tokenizer.train_bpe import train_tokenizer

DEFAULT_PACKAGES = ("tokenizers", "tqdm", "wrapt", "markupsafe", "formattedcode", "jsonschema_specifications")


def _installed_texts(limit: int) -> list[str]:
    """Every text file of a few installed packages: real code that needs no download."""
    texts, size = [], 0
    for name in DEFAULT_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue
        for path in sorted(Path(next(iter(spec.submodule_search_locations))).rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            raw = path.read_bytes()
            if b"\0" in raw:
                continue
            try:
                texts.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                continue
            size += len(raw)
            if size >= limit:
                return texts
    return texts


def _size(value: str) -> int:
    units = {"k": 10**3, "m": 10**6, "g": 10**9}
    v = value.lower().rstrip("b")
    return int(float(v[:-1]) * units[v[-1]]) if v and v[-1] in units else int(v)


def _prefix(texts: list[str], limit: int) -> list[str]:
    out, size = [], 0
    for t in texts:
        if size >= limit:
            break
        out.append(t)
        size += len(t.encode("utf-8"))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", help="dataset dir or parquet/jsonl files (default: installed code)")
    ap.add_argument("--column", help="text column (default: text, else content)")
    ap.add_argument("--tokenizer", help="time this tokenizer (dir or tokenizer.json) instead of training one")
    ap.add_argument("--vocab-size", type=int, default=49_152)
    ap.add_argument("--train-bytes", type=_size, default=_size("4M"))
    ap.add_argument("--encode-bytes", type=_size, default=_size("4M"))
    ap.add_argument("--batch-size", type=int, default=1024, help="texts per encode call")
    ap.add_argument("--repeat", type=int, default=3, help="encode timings: best of N")
    ap.add_argument("--json", metavar="FILE", help="write the results here")
    args = ap.parse_args()

    need = max(args.train_bytes, args.encode_bytes)
    if args.data:
        texts = list(Corpus(args.data, column=args.column, max_bytes=need))
    else:
        texts = _installed_texts(need)
    results: dict[str, object] = {
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "os": platform.platform()},
    }

    with tempfile.TemporaryDirectory() as tmp:
        if args.tokenizer:
            tok = load_tokenizer(args.tokenizer, require_special_tokens=False)
        else:
            sample = _prefix(texts, args.train_bytes)
            sample_bytes = sum(len(t.encode("utf-8")) for t in sample)
            start = time.perf_counter()
            tok = train_tokenizer(sample, vocab_size=args.vocab_size)
            seconds = time.perf_counter() - start
            results["train"] = {
                "bytes": sample_bytes,
                "seconds": round(seconds, 3),
                "MB_per_s": round(sample_bytes / seconds / 1e6, 3),
                "vocab_size": tok.get_vocab_size(),
            }
        tok_dir = save_tokenizer(tok, Path(tmp) / "tok")
        ours = load_tokenizer(tok_dir)  # both sides read the same tokenizer.json

        encode_texts = _prefix(texts, args.encode_bytes)
        n_bytes = sum(len(t.encode("utf-8")) for t in encode_texts)
        step = args.batch_size
        batches = [encode_texts[i : i + step] for i in range(0, len(encode_texts), step)]
        runs = {
            "stackcoder encode_batch (tokenizers, no offsets)": lambda: [
                ids for b in batches for ids in encode_batch(ours, b)
            ]
        }
        try:
            from transformers import AutoTokenizer

            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            hf = AutoTokenizer.from_pretrained(str(tok_dir))
            runs["transformers AutoTokenizer (batch __call__)"] = lambda: [
                ids for b in batches for ids in hf(b, add_special_tokens=False, verbose=False)["input_ids"]
            ]
        except ImportError:
            print("transformers not installed: reference skipped", file=sys.stderr)

        # alternate the contenders each round, so that a busy spell on the machine hits both alike
        best = dict.fromkeys(runs, float("inf"))
        ids_of: dict[str, list] = {}
        for _ in range(args.repeat):
            for name, fn in runs.items():
                start = time.perf_counter()
                ids_of[name] = fn()
                best[name] = min(best[name], time.perf_counter() - start)
        reference_ids = next(iter(ids_of.values()))
        encode: dict[str, dict] = {}
        for name, seconds in best.items():
            n_tokens = sum(len(x) for x in ids_of[name])
            encode[name] = {
                "seconds": round(seconds, 4),
                "MB_per_s": round(n_bytes / seconds / 1e6, 3),
                "Mtokens_per_s": round(n_tokens / seconds / 1e6, 3),
                "tokens": n_tokens,
                "bytes_per_token": round(n_bytes / n_tokens, 3),
                "same_ids_as_ours": ids_of[name] == reference_ids,
            }
        results["encode"] = {"texts": len(encode_texts), "bytes": n_bytes, "runs": encode}

    print(f"\n{len(encode_texts):,} texts, {n_bytes / 1e6:.1f} MB, {os.cpu_count()} CPUs\n")
    print("| what | MB/s | M tokens/s | bytes/token | same ids |")
    print("|---|---|---|---|---|")
    if "train" in results:
        t = results["train"]
        print(f"| train BPE (vocab {t['vocab_size']:,}, {t['bytes'] / 1e6:.1f} MB) | {t['MB_per_s']} | | | |")
    for name, r in encode.items():
        row = (r["MB_per_s"], r["Mtokens_per_s"], r["bytes_per_token"], r["same_ids_as_ours"])
        print(f"| encode: {name} | " + " | ".join(map(str, row)) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
