"""Throughput of decontamination (recipe.md §1 stage 7) on real code, against the naive loop.

The claim measured: one Aho-Corasick pass per file keeps decontamination fast even with an APPS-sized
set of benchmark strings, where BigCode's loop (``substring in content`` for every string, their
decontamination/find_substrings.py) slows down in proportion to the number of strings. Input: the
`.py` files of an installed site-packages (default: this interpreter's), up to --max-mb. Lines, one
core: whitespace removal alone; the Decontaminator with HumanEval (the recipe's default); an index of
--strings synthetic benchmark strings (windows of 100-600 characters cut from other real files, like
APPS's ~100k solutions); the naive loop for both, on --naive-mb of the input.

    python benchmarks/bench_decontaminate.py --max-mb 50
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import sysconfig
import time
from pathlib import Path

from stackcoder.data.decontaminate import (
    MIN_CHARS,
    BenchmarkIndex,
    Decontaminator,
    load_benchmark,
    strip_whitespace,
)


def read_texts(paths: list[Path], max_bytes: int) -> list[str]:
    texts, total = [], 0
    for path in paths:
        if total >= max_bytes:
            break
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        texts.append(text)
        total += len(text.encode())
    return texts


def synthetic_strings(texts: list[str], n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        text = rng.choice(texts)
        size = rng.randint(100, 600)
        if len(text) > size:
            start = rng.randrange(len(text) - size)
            out.append(("synthetic", str(len(out)), text[start : start + size]))
    return out


def mb_per_s(texts: list[str], fn) -> tuple[float, int]:
    n_bytes = sum(len(t.encode()) for t in texts)
    start = time.perf_counter()
    hits = sum(fn(t) is not None for t in texts)
    return n_bytes / 1e6 / (time.perf_counter() - start), hits


def naive(strings: list[str]):
    def find(text: str) -> str | None:
        s = strip_whitespace(text)
        return next((x for x in strings if x in s), None)

    return find


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(sysconfig.get_paths()["purelib"]))
    parser.add_argument("--max-mb", type=float, default=50.0)
    parser.add_argument("--strings", type=int, default=100_000)
    parser.add_argument("--naive-mb", type=float, default=2.0)
    args = parser.parse_args()

    paths = sorted(args.root.rglob("*.py"))
    # even files are the input, odd files the source of synthetic benchmark strings (no overlap)
    texts = read_texts(paths[::2], int(args.max_mb * 1e6))
    if not texts:
        print(f"no .py files under {args.root}", file=sys.stderr)
        return 1
    print(f"{len(texts)} files, {sum(len(t.encode()) for t in texts) / 1e6:.1f} MB from {args.root}")
    small = read_texts(paths[::2], int(args.naive_mb * 1e6))

    def line(name: str, rate: float, hits: int | str = "") -> None:
        print(f"{name:<44} {rate:>9.1f} MB/s  {hits}")

    line("whitespace removal only", mb_per_s(texts, lambda t: strip_whitespace(t) and None)[0])

    step = Decontaminator()
    index = step.index()
    rate, hits = mb_per_s(texts, index.find)
    line(f"Decontaminator, HumanEval ({index.size} strings)", rate, f"{hits} files matched")

    strings = synthetic_strings(read_texts(paths[1::2], 200_000_000), args.strings)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    big = BenchmarkIndex(strings, [])
    build_s = time.perf_counter() - start
    rss_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    print(f"index of {big.size} synthetic strings: built in {build_s:.1f} s, +{rss_mb:.0f} MB peak RSS")
    rate, hits = mb_per_s(texts, big.find)
    line(f"BenchmarkIndex, {big.size} strings", rate, f"{hits} files matched")

    he = list(dict.fromkeys(strip_whitespace(s) for _, s in load_benchmark("humaneval")))
    he = [s for s in he if len(s) >= MIN_CHARS]
    line(f"ref: naive loop, HumanEval ({len(he)} strings)", *mb_per_s(small, naive(he)))
    synthetic = list(dict.fromkeys(strip_whitespace(t) for _, _, t in strings))
    line(f"ref: naive loop, {len(synthetic)} strings", *mb_per_s(small, naive(synthetic)))
    agree = sum((big.find(t) is None) == (naive(synthetic)(t) is None) for t in small)
    print(f"index and naive loop agree on {agree} of {len(small)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
