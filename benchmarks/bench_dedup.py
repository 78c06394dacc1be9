#!/usr/bin/env python
"""Near dedup (recipe.md §1 stage 5): MinHash speed against datasketch, quality against brute
force, and peak memory of each dedup pass. Goal (issue 3): signatures >= 10x faster than
datasketch; precision >= 0.95 and recall >= 0.9 at Jaccard 0.7.

speed   real code (the ``.py`` files of this interpreter's site-packages, up to --max-mb), one
        core, the recipe's 5-token shingles and 250 slots, every implementation in the same run
        on the same files:
        - signature from a file's shingles (tokenizing excluded): ours (rensa's R-MinHash on our
          64-bit shingle hashes); datasketch ``MinHash.update_batch`` and per-shingle
          ``MinHash.update`` (on the shingle strings, bytes, as usually fed to it; ``update`` on a
          --update-mb subset, it is slow); and datatrove's vectorised numpy 250-permutation
          MinHash (``(a*x + b) mod (2^61 - 1)``) on our shingle hashes, the other way we weighed;
        - text to signature (tokens, shingles, signature): ours against datasketch update_batch
          with the usual Python shingling (``" ".join`` of 5 tokens).
quality the demo corpus plus generated near-copies (tests/data/dedup/test_minhash_quality.py),
        with and without verification of candidate pairs by their signatures.
memory  the dedup passes on the demo corpus as part 1's shards (--shards, --buckets), each pass
        in its own process, all its tasks in a row: seconds and peak RSS (and the RSS of the
        process before the pass started, imports included).

    python benchmarks/bench_dedup.py                       # all three
    python benchmarks/bench_dedup.py speed --max-mb 5      # a smoke run
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NUM_PERM, NGRAM, SEED = 250, 5, 1


def site_texts(max_mb: float) -> list[str]:
    texts, total = [], 0
    for path in sorted(Path(sysconfig.get_paths()["purelib"]).rglob("*.py")):
        if total >= max_mb * 1e6:
            break
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        texts.append(text)
        total += len(text.encode("utf-8"))
    return texts


def python_shingles(text: str) -> set[bytes]:
    """The usual Python shingling, as datasketch users write it."""
    tokens = [t for t in re.split(r"\W+", text.lower()) if t]
    return {" ".join(tokens[i : i + NGRAM]).encode("utf-8") for i in range(len(tokens) - NGRAM + 1)}


class DatatroveStyle:
    """datatrove's MinhashDedupSignature.get_signature: 250 permutations mod the Mersenne prime."""

    prime = np.uint64((1 << 61) - 1)

    def __init__(self) -> None:
        gen = np.random.RandomState(SEED)
        self.a = gen.randint(1, self.prime, dtype=np.uint64, size=(1, NUM_PERM))
        self.b = gen.randint(0, self.prime, dtype=np.uint64, size=(1, NUM_PERM))

    def __call__(self, shingles: np.ndarray) -> np.ndarray:
        x = (shingles >> np.uint64(3)).reshape(-1, 1)  # < 2^61, as datatrove's 64-bit hashes are folded
        return np.min((x * self.a + self.b) % self.prime, axis=0).astype(np.uint32)


def timed(fn, items) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)
    return time.perf_counter() - start


def speed(max_mb: float, update_mb: float) -> list[str]:
    from datasketch import MinHash

    from stackcoder.data.dedup.minhash import shingle_hashes, signature

    texts = [t for t in site_texts(max_mb) if shingle_hashes(t) is not None]
    n_bytes = [len(t.encode("utf-8")) for t in texts]
    mb = sum(n_bytes) / 1e6
    ours_shingles = [shingle_hashes(t, NGRAM) for t in texts]
    ds_shingles = [python_shingles(t) for t in texts]
    cut = int(np.searchsorted(np.cumsum(n_bytes), update_mb * 1e6)) + 1
    sub_mb = sum(n_bytes[:cut]) / 1e6

    def ds_batch(shingles: set[bytes]) -> None:
        m = MinHash(num_perm=NUM_PERM, seed=SEED)
        m.update_batch(list(shingles))

    def ds_update(shingles: set[bytes]) -> None:
        m = MinHash(num_perm=NUM_PERM, seed=SEED)
        for s in shingles:
            m.update(s)

    signature(ours_shingles[0], NUM_PERM, SEED)  # warm-up: rensa's first call loads its tables
    datatrove = DatatroveStyle()
    rows = [
        (
            "ours: rensa R-MinHash",
            timed(lambda s: signature(s, NUM_PERM, SEED), ours_shingles),
            len(texts),
            mb,
        ),
        ("datatrove-style numpy", timed(datatrove, ours_shingles), len(texts), mb),
        ("datasketch update_batch", timed(ds_batch, ds_shingles), len(texts), mb),
        ("datasketch update", timed(ds_update, ds_shingles[:cut]), cut, sub_mb),
    ]
    end_to_end = [
        ("ours", timed(lambda t: signature(shingle_hashes(t, NGRAM), NUM_PERM, SEED), texts), len(texts), mb),
        ("datasketch update_batch", timed(lambda t: ds_batch(python_shingles(t)), texts), len(texts), mb),
        ("datasketch update", timed(lambda t: ds_update(python_shingles(t)), texts[:cut]), cut, sub_mb),
    ]

    def table(title: str, results: list) -> list[str]:
        ours = results[0][3] / results[0][1]  # MB/s
        out = [title, "", "| implementation | signatures/s | MB/s | ours is x faster |", "|---|---|---|---|"]
        for name, seconds, n, size in results:
            out.append(
                f"| {name} | {n / seconds:,.0f} | {size / seconds:.1f} | {ours / (size / seconds):.1f} |"
            )
        return [*out, ""]

    return [
        f"### speed: {len(texts):,} files, {mb:.1f} MB of site-packages .py (update: first {sub_mb:.1f} MB)",
        "",
        *table("Signature from the file's shingles (tokenizing excluded):", rows),
        *table("Text to signature (tokens, shingles, signature):", end_to_end),
    ]


def quality(corpus: Path) -> list[str]:
    sys.path.insert(0, str(ROOT / "tests"))
    from data.dedup.test_minhash_quality import demo_files, measure, sample

    files = sample(demo_files(corpus), seed=0)
    out = [
        f"### quality: {len(files):,} files (demo corpus + near-copies), Jaccard >= 0.7",
        "",
        "| candidates | P vs recipe | R vs recipe | P vs pairs | R vs pairs | edge P | joined pairs |",
        "|---|---|---|---|---|---|---|",
    ]
    for verify in (True, False):
        with tempfile.TemporaryDirectory() as work:
            m = measure(files, Path(work), verify)
        out.append(
            f"| {'verified' if verify else 'LSH only'} | {m['precision_vs_recipe']:.3f} | "
            f"{m['recall_vs_recipe']:.3f} | {m['precision_vs_pairs']:.3f} | {m['recall_vs_pairs']:.3f} | "
            f"{m['edge_precision']:.3f} | {m['our_component_pairs']} |"
        )
    out += [
        "",
        f"True pairs: {m['true_pairs']}; the exact recipe's components join {m['recipe_component_pairs']}.",
        "",
    ]
    return out


def write_demo_shards(corpus: Path, work: Path, shards: int, copies: int) -> tuple[int, int]:
    """The demo corpus's readable files as part 1's shards, whole repositories per shard; with
    ``copies`` > 1, each repository again as ``copies - 1`` forks whose files have one line
    added (near-duplicates, not exact ones), to see how the passes scale."""
    sys.path.insert(0, str(ROOT / "tests"))
    from data.dedup.helpers import row, write_shards
    from data.dedup.test_minhash_quality import demo_files

    files = demo_files(corpus)
    parts: list[list[dict]] = [[] for _ in range(shards)]
    repos: dict[str, int] = {}
    n_files = n_bytes = 0
    for k in range(copies):
        for repo, path, language, text in files:
            name = repo if k == 0 else f"{repo}-fork{k}"
            if k:
                lines = text.splitlines(keepends=True)
                lines.insert(len(lines) // 2, f"# fork {k}\n")
                text = "".join(lines)
            parts[repos.setdefault(name, len(repos)) % shards].append(row(text, name, path, language))
            n_files += 1
            n_bytes += len(text.encode("utf-8"))
    write_shards(work, parts)
    return n_files, n_bytes


def peak_rss_mb() -> float:
    """This process's peak RSS. Not ``ru_maxrss``: on Linux it survives ``exec``, so a child
    would report its parent's peak from before the fork."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one_pass(work: str, name: str, shards: int, buckets: int) -> None:
    """Internal: run every task of one pass in this process and print seconds and peak RSS."""
    from stackcoder.data.dedup import dedup_passes
    from stackcoder.data.recipe import load_recipe

    base = peak_rss_mb()
    (p,) = [p for p in dedup_passes(Path(work), shards, buckets, load_recipe(None)) if p.name == name]
    start = time.perf_counter()
    for rank in range(p.tasks):
        for step in p.steps:
            step.run(None, rank, p.tasks)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "base_mb": base, "peak_mb": peak_rss_mb()}))


def memory(corpus: Path, shards: int, buckets: int, copies: int) -> list[str]:
    from stackcoder.data.dedup import dedup_passes, dedup_stats
    from stackcoder.data.recipe import load_recipe

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        n_files, n_bytes = write_demo_shards(corpus, work, shards, copies)
        out += [
            f"### memory: demo corpus x {copies}, {n_files:,} files, {n_bytes / 1e6:.1f} MB, "
            f"{shards} shards, {buckets} buckets",
            "",
            "| pass | tasks | s | peak RSS MB | RSS before MB |",
            "|---|---|---|---|---|",
        ]
        for p in dedup_passes(work, shards, buckets, load_recipe(None)):
            cmd = [sys.executable, __file__, "_pass", str(work), p.name, str(shards), str(buckets)]
            r = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
            out.append(
                f"| {p.name} | {p.tasks} | {r['seconds']:.2f} | {r['peak_mb']:.0f} | {r['base_mb']:.0f} |"
            )
        stats = dedup_stats(work)
        out += [
            "",
            f"Exact: {stats['exact']['removed']} removed in {stats['exact']['clusters']} clusters; "
            f"near: {stats['near']['removed']} removed in {stats['near']['clusters']} clusters.",
            "",
        ]
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_pass":
        work, name, shards, buckets = sys.argv[2:6]
        run_one_pass(work, name, int(shards), int(buckets))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("parts", nargs="*", choices=["speed", "quality", "memory"], default=[])
    p.add_argument("--max-mb", type=float, default=20.0, help="site-packages code for the speed test")
    p.add_argument("--update-mb", type=float, default=2.0, help="of which datasketch.update sees this much")
    p.add_argument("--demo", type=Path, default=None, help="demo corpus (default: stackcoder's cache)")
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--buckets", type=int, default=4)
    p.add_argument("--copies", type=int, default=1, help="memory: the demo corpus plus copies - 1 forks")
    args = p.parse_args()
    parts = args.parts or ["speed", "quality", "memory"]
    demo = args.demo
    if demo is None and {"quality", "memory"} & set(parts):
        from stackcoder.data.demo.manifest import default_cache

        demo = default_cache()
    if "speed" in parts:
        print("\n".join(speed(args.max_mb, args.update_mb)), flush=True)
    if "quality" in parts:
        print("\n".join(quality(demo)), flush=True)
    if "memory" in parts:
        print("\n".join(memory(demo, args.shards, args.buckets, args.copies)), flush=True)


if __name__ == "__main__":
    main()
