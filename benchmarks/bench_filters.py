"""Throughput of language detection and each basic filter (recipe.md §1, stages 1 and 3).

The claim measured: every step of part 1 must sustain >= 5 MB/s per core. Input is real code: the
`.py` files of an installed site-packages (default: this interpreter's), read up to --max-mb.
Each step sees every file (a filter that does not concern a language returns at once, as in the
pipeline), one core, one line per step: files/s and MB/s of UTF-8 content. The reference line is
BigCode's per-character alpha fraction (``np.mean([c.isalnum() ...])`` in their filtering.py,
here ``sum(map(str.isalpha, text))``), to compare with AlphaFilter's counting.

    python benchmarks/bench_filters.py --max-mb 50
    python benchmarks/bench_filters.py --root /usr/share/doc --pattern '*.html'  # HTML filter at work
"""

from __future__ import annotations

import argparse
import copy
import sys
import sysconfig
import time
from pathlib import Path

from datatrove.data import Document

from stackcoder.data import fields as F
from stackcoder.data.language import LanguageDetector
from stackcoder.data.layout import DatasetLayout
from stackcoder.data.license import LicenseFilter
from stackcoder.data.pipeline import filter_pass
from stackcoder.data.recipe import load_recipe
from stackcoder.data.step import FileFilter


def load_files(root: Path, pattern: str, max_bytes: int) -> list[Document]:
    docs, total = [], 0
    for path in sorted(root.rglob(pattern)):
        if total >= max_bytes or not path.is_file():
            continue
        raw = path.read_bytes()
        if b"\0" in raw:
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        rel = path.relative_to(root).as_posix()
        meta = {F.PATH: rel, F.REPO_NAME: "bench/site-packages", F.LENGTH_BYTES: len(raw)}
        docs.append(Document(text=text, id=rel, metadata=meta))
        total += len(raw)
    return docs


def timed(fn, docs: list[Document]) -> float:
    fn(copy.deepcopy(docs[0]))  # warm-up: first-call costs (enry's Go runtime) are not throughput
    start = time.perf_counter()
    for doc in docs:
        fn(doc)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(sysconfig.get_paths()["purelib"]))
    parser.add_argument("--pattern", default="*.py")
    parser.add_argument("--max-mb", type=float, default=50.0)
    args = parser.parse_args()

    docs = load_files(args.root, args.pattern, int(args.max_mb * 1e6))
    if not docs:
        print(f"no {args.pattern} files under {args.root}", file=sys.stderr)
        return 1
    n_bytes = sum(d.metadata[F.LENGTH_BYTES] for d in docs)
    print(f"{len(docs)} files, {n_bytes / 1e6:.1f} MB from {args.root} ({args.pattern})")

    def line(name: str, seconds: float) -> None:
        print(f"{name:<24} {len(docs) / seconds:>10.0f} files/s {n_bytes / 1e6 / seconds:>9.1f} MB/s")

    # the detector labels the files the filters then read; time it on copies so labels start empty
    fresh = copy.deepcopy(docs)
    detector = LanguageDetector()
    total = timed(detector.process, fresh)
    line("language", total)
    docs = fresh

    # the filters as the build runs them (recipe values, pipeline order), so a new one is timed too;
    # not the license filter, which reads the license detector's labels
    passed = filter_pass(load_recipe(), [], DatasetLayout(Path("unused")), 1, []).steps
    steps = [s for s in passed if isinstance(s, FileFilter) and not isinstance(s, LicenseFilter)]
    for step in steps:
        seconds = timed(step.filter, docs)
        total += seconds
        line(step.stage, seconds)
    line("all of the above", total)
    line("ref: alpha per char", timed(lambda d: sum(map(str.isalpha, d.text)), docs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
