#!/usr/bin/env python
"""`stackcoder index` (issue 8): the Data Portrait's size, speed and accuracy, against ``rbloom`` (a
Bloom filter in Rust) and a plain Python ``set`` of the same n-grams, in the same run.

Corpus: the installed Python distributions of this environment (real code by others), one
repository per distribution, written as a dataset's ``files/`` parquet shards; a tenth of the
repositories (by a hash of the name) is held out of the index, as text known to be absent.

Figures:
- size of the Bloom filters as a share of the corpus (goal ≤ 3% at ≤ 1% false positives per n-gram);
- build MB/s on one core: the filters alone (normalise, hash, set bits) for all three, and the
  whole `stackcoder index build` (filters + tantivy) through the executor;
- query MB/s: every offset of the held-out text tested (what a query does), for all three, and
  ours end to end (spans and chance probabilities);
- false-positive rate per n-gram: configured, measured at build on random probes, and measured on
  the held-out text's n-grams that the exact set says are absent (real code, not random strings);
- recall: random spans of ≥ 100 normalised characters of indexed files, mapped back to the raw text;
  the goal is every one found.

    python benchmarks/bench_index.py            # 40 MB corpus
    python benchmarks/bench_index.py --mb 150
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from stackcoder.data.executor import RunOptions
from stackcoder.index.build import build_index
from stackcoder.index.config import IndexConfig
from stackcoder.index.portrait import (
    WIDTH,
    Portrait,
    normalize,
    normalize_codes,
    window_hashes,
    write_shard,
)

TEXT_SUFFIXES = {
    ".py",
    ".pyi",
    ".c",
    ".h",
    ".cpp",
    ".js",
    ".ts",
    ".rs",
    ".go",
    ".java",
    ".md",
    ".txt",
    ".toml",
}


def corpus(max_mb: float) -> list[dict]:
    site = Path(sysconfig.get_paths()["purelib"])
    rows, total = [], 0
    for info in sorted(site.glob("*.dist-info")):
        tops = (info / "top_level.txt").read_text().split() if (info / "top_level.txt").is_file() else []
        repo = info.name.removesuffix(".dist-info").split("-")[0].lower()
        for top in tops:
            d = site / top
            if not d.is_dir():
                continue
            for p in sorted(d.rglob("*")):
                if p.suffix not in TEXT_SUFFIXES or not p.is_file() or p.stat().st_size > 1_000_000:
                    continue
                try:
                    text = p.read_text("utf-8")
                except (UnicodeDecodeError, OSError):
                    continue
                raw = text.encode()
                rows.append(
                    {
                        "blob_id": hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest(),
                        "repo_name": f"site/{repo}",
                        "path": str(p.relative_to(site)),
                        "content": text,
                        "language": "Python" if p.suffix in (".py", ".pyi") else p.suffix[1:],
                        "license_type": "permissive",
                        "detected_licenses": [],
                        "revision_id": "",
                        "length_bytes": len(raw),
                    }
                )
                total += len(raw)
                if total > max_mb * 1e6:
                    return rows
    return rows


def held_out(repo: str) -> bool:
    return hashlib.sha256(repo.encode()).digest()[0] < 26  # about a tenth


def write_dataset(rows: list[dict], root: Path, shards: int = 8) -> None:
    (root / "files").mkdir(parents=True)
    for s in range(shards):
        part = rows[s::shards]
        pq.write_table(pa.Table.from_pylist(part), root / "files" / f"{s:05d}.parquet")


def row(name: str, ours: float, rb: float, exact: float, fmt: str = ".1f") -> str:
    return f"| {name} | {ours:{fmt}} | {rb:{fmt}} | {exact:{fmt}} |"


def timed(fn):  # noqa: ANN001, ANN201
    start = time.process_time()
    out = fn()
    return out, time.process_time() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=40, help="corpus size in MB (default: %(default)s)")
    ap.add_argument("--fpr", type=float, default=0.01)
    ap.add_argument("--recall-samples", type=int, default=2000)
    args = ap.parse_args()
    import rbloom

    rows = corpus(args.mb)
    indexed = [r for r in rows if not held_out(r["repo_name"])]
    absent = [r for r in rows if held_out(r["repo_name"])]
    mb = sum(r["length_bytes"] for r in indexed) / 1e6
    absent_text = "\n".join(r["content"] for r in absent)
    absent_mb = len(absent_text.encode()) / 1e6
    print(f"corpus: {len(indexed):,} files, {mb:.1f} MB indexed; {len(absent):,} files held out")
    texts = [r["content"] for r in indexed]

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # --- build: filters alone, one core ---
        meta, ours_build = timed(lambda: write_shard(tmp / "p", "00000", texts, fpr=args.fpr))
        import json

        (tmp / "p" / "00000.json").write_text(json.dumps(meta))
        portrait = Portrait(tmp / "p")
        normalized, norm_s = timed(lambda: [normalize(t) for t in texts])
        grams, slice_s = timed(
            lambda: [t[i : i + WIDTH] for t in normalized for i in range(0, len(t) - WIDTH + 1, WIDTH)]
        )
        n = len(grams)

        def fill_rbloom() -> rbloom.Bloom:
            b = rbloom.Bloom(n, args.fpr)
            b.update(grams)
            return b

        rb, rb_fill = timed(fill_rbloom)
        exact, set_fill = timed(lambda: set(grams))
        prep = norm_s + slice_s  # rbloom and the set get their n-grams from the same normalise + slice

        # --- query: every offset of the held-out text ---
        ab_codes, ab_where = normalize_codes(absent_text)
        ab_norm = normalize(absent_text)
        offsets = len(ab_norm) - WIDTH + 1
        ours_hits, ours_q = timed(lambda: portrait.hits(window_hashes(ab_codes)))
        _, ours_q_full = timed(lambda: portrait.query(absent_text))
        rb_hits, rb_q = timed(
            lambda: np.fromiter((ab_norm[i : i + WIDTH] in rb for i in range(offsets)), bool, offsets)
        )
        set_hits, set_q = timed(
            lambda: np.fromiter((ab_norm[i : i + WIDTH] in exact for i in range(offsets)), bool, offsets)
        )
        really_absent = ~set_hits

        # --- recall on spans of >= 100 normalised characters ---
        rng = np.random.default_rng(0)
        found = tried = 0
        long = [t for t in texts if len(normalize(t)) >= 300]
        for _ in range(args.recall_samples):
            t = long[int(rng.integers(len(long)))]
            norm, where = normalize_codes(t)
            a = int(rng.integers(0, len(norm) - 100))
            b = a + 100
            raw = t[int(where[a]) : int(where[b - 1]) + 1]
            if len(normalize(raw)) < 100:  # a separator at either end was dropped: take the next offset
                continue
            tried += 1
            found += bool(portrait.query(raw))

        # --- the whole index build through the executor (filters + tantivy), one core ---
        write_dataset(indexed, tmp / "ds")
        start = time.perf_counter()
        summary = build_index(
            IndexConfig(
                str(tmp / "ds"), str(tmp / "ix"), fpr=args.fpr, shards=1, run=RunOptions(progress=False)
            )
        )
        full_build = time.perf_counter() - start

    set_bytes = sys.getsizeof(exact) + sum(sys.getsizeof(g) for g in exact)
    cb = mb * 1e6  # corpus bytes
    rb_build, set_build = prep + rb_fill, prep + set_fill
    lines = [
        f"## Index (`python benchmarks/bench_index.py --mb {args.mb:g}`)",
        "",
        f"Corpus: {len(indexed):,} files ({mb:.1f} MB) of the installed Python distributions indexed, "
        f"{absent_mb:.1f} MB of held-out distributions as absent text; {n:,} n-grams; target fpr {args.fpr}.",
        "",
        "| | ours | rbloom | Python set |",
        "|---|---|---|---|",
        row("size, share of corpus", portrait.nbytes / cb, rb.size_in_bits / 8 / cb, set_bytes / cb, ".2%"),
        row(
            "build MB/s, one core (normalise, n-grams, insert)",
            mb / ours_build,
            mb / rb_build,
            mb / set_build,
        ),
        row("query MB/s, every offset", absent_mb / ours_q, absent_mb / rb_q, absent_mb / set_q, ".2f"),
        row(
            "fpr on absent real n-grams",
            ours_hits[really_absent].mean(),
            rb_hits[really_absent].mean(),
            0,
            ".4f",
        ),
        f"| recall, spans of 100 normalised chars | {found}/{tried} | | |",
        "",
        f"- ours, query end to end (spans, chance probabilities): {absent_mb / ours_q_full:.1f} MB/s; "
        f"build ratio ours/rbloom {rb_build / ours_build:.2f}x, query ratio {rb_q / ours_q:.1f}x.",
        f"- measured fpr at build (random probes): {meta['measured_fpr']:.4f}; configured {args.fpr}.",
        f"- `stackcoder index build` (filters + tantivy, one shard, one core): {mb / full_build:.1f} MB/s; "
        f"full-text index {summary['text_index_bytes'] / cb:.0%} of the corpus (it stores the content).",
        f"- held-out offsets present in the exact set (code shared between distributions): "
        f"{set_hits.mean():.2%}.",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
