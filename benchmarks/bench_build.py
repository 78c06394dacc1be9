#!/usr/bin/env python
"""Part 1 of The Stack v2 pipeline as a whole (`stackcoder build`): MB/s and files/s per core, per
stage and end to end, and peak memory per worker. Goal (issue 2): >= 5 MB/s per core, <= 2 GB per
worker.

Corpora (both real code written by others):
- ``demo``: the 48-package demo corpus (`stackcoder demo download`); small repositories, so the
  license stage (license files are a large share) and ScanCode's index load weigh heavily.
- ``site``: the installed Python distributions of this environment, one repository per distribution
  (its top-level packages plus its ``.dist-info``, where the license files are; hard links in a
  temporary directory), at most --site-mb of them.

Each corpus is built with ``--workers 1`` in a subprocess (so one core does all the work and its
peak RSS is the worker's) and with ``--workers 2``. Per-stage rates come from datatrove's step
timings (stats.json). The reference in the same run is a plain read of the same sources: the
reader step alone (listing, decompression, hashing, decoding) on one core, so the ratio tells
what the recipe costs on top of reading the data at all.

    python benchmarks/bench_build.py                    # both corpora
    python benchmarks/bench_build.py --corpus demo
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path


def site_corpus(root: Path, max_mb: float) -> list[str]:
    """One directory per installed distribution: its top-level packages and its dist-info, hard-linked."""
    site = Path(sysconfig.get_paths()["purelib"])
    total, made = 0, []
    for info in sorted(site.glob("*.dist-info")):
        tops = (info / "top_level.txt").read_text().split() if (info / "top_level.txt").is_file() else []
        dirs = [site / t for t in tops if (site / t).is_dir()]
        if not dirs:
            continue
        size = sum(p.stat().st_size for d in dirs for p in d.rglob("*") if p.is_file() and not p.is_symlink())
        if size > 20e6 or total + size > max_mb * 1e6:
            continue
        repo = root / info.name.removesuffix(".dist-info")
        for src in [*dirs, info]:
            shutil.copytree(src, repo / src.name, copy_function=os.link, symlinks=True)
        total += size
        made.append(str(repo))
    return made


def run_build(args: list[str], out: Path, workers: int) -> dict:
    cmd = [sys.executable, "-m", "stackcoder", "build", *args, "-o", str(out), "-w", str(workers), "-q"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    stats = json.loads((out / "stats.json").read_text())
    return {
        "wall_s": wall,
        "cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "peak_rss_mb": after.ru_maxrss / 1024,  # the largest child so far: the CLI or a worker
        "stats": stats,
    }


def read_only(sources_args: list[str]) -> tuple[float, int, int]:
    """The reference: the reader step alone, one core."""
    code = (
        "import sys, time, json\n"
        "from stackcoder.data.readers import discover_sources\n"
        "from stackcoder.data.readers.reader import RepositoryReader\n"
        "a = json.loads(sys.argv[1])\n"
        "s = discover_sources(a['paths'], repos_dir=a['repos_dir'], repo_metadata=a['meta'],\n"
        "                     max_archive_bytes=8e9, max_archive_members=2_000_000)\n"
        "t = time.perf_counter(); n = b = 0\n"
        "for d in RepositoryReader(s).run(None, 0, 1): n += 1; b += d.metadata['length_bytes'] or 0\n"
        "print(json.dumps([time.perf_counter() - t, n, b]))\n"
    )
    spec = {"paths": [], "repos_dir": False, "meta": None}
    it = iter(sources_args)
    for arg in it:
        if arg == "--repos-dir":
            spec["repos_dir"] = True
        elif arg == "--repo-metadata":
            spec["meta"] = next(it)
        else:
            spec["paths"].append(arg)
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(spec)], capture_output=True, text=True, check=True
    )
    return tuple(json.loads(out.stdout))


def report(name: str, args: list[str], work: Path) -> list[str]:
    one = run_build(args, work / f"{name}-w1", 1)
    two = run_build(args, work / f"{name}-w2", 2)
    read_s, read_files, read_bytes = read_only(args)
    st = one["stats"]
    mb = st["totals"]["bytes_seen"] / 1e6
    files = st["totals"]["files_seen"]
    lines = [
        f"### {name}: {len(st['sources'])} repositories, {files:,} files, {mb:.1f} MB",
        "",
        "| run | wall s | MB/s per core | files/s per core | peak RSS MB |",
        "|---|---|---|---|---|",
        f"| build, 1 worker | {one['wall_s']:.1f} | {mb / one['wall_s']:.2f} | {files / one['wall_s']:.0f} "
        f"| {one['peak_rss_mb']:.0f} |",
        f"| build, 2 workers | {two['wall_s']:.1f} | {mb / two['wall_s'] / 2:.2f} | "
        f"{files / two['wall_s'] / 2:.0f} | {two['peak_rss_mb']:.0f} |",
        f"| reference: reader alone, 1 core | {read_s:.1f} | {read_bytes / 1e6 / read_s:.2f} | "
        f"{read_files / read_s:.0f} | |",
        "",
        f"Build (1 worker) / reader alone: {one['wall_s'] / read_s:.1f}x the time. "
        f"CPU seconds, 1 worker: {one['cpu_s']:.1f}.",
        "",
        "| stage | files in | MB in | step s | MB/s | files/s |",
        "|---|---|---|---|---|---|",
    ]
    for s in st["stages"]:
        t = s["time_s"] or float("nan")
        lines.append(
            f"| {s['stage']} | {s['files_in']:,} | {s['bytes_in'] / 1e6:.1f} | {s['time_s']:.2f} | "
            f"{s['bytes_in'] / 1e6 / t:.1f} | {s['files_in'] / t:.0f} |"
        )
    return lines + [""]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", choices=["demo", "site", "both"], default="both")
    p.add_argument("--site-mb", type=float, default=150, help="cap on the site corpus size")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_build_") as tmp:
        work = Path(tmp)
        lines = [f"cores: {os.cpu_count()}, python {sys.version.split()[0]}", ""]
        if args.corpus in ("demo", "both"):
            from stackcoder.data.demo.download import download_corpus
            from stackcoder.data.demo.manifest import default_cache

            cache = download_corpus(default_cache(), progress=False)
            demo = [
                "--repos-dir",
                str(cache / "repos"),
                "--repo-metadata",
                str(cache / "repo_metadata.jsonl"),
            ]
            lines += report("demo", demo, work)
        if args.corpus in ("site", "both"):
            repos = site_corpus(work / "site", args.site_mb)
            lines += report("site", repos, work)
        print("\n".join(lines))


if __name__ == "__main__":
    main()
