#!/usr/bin/env python
"""The other sources (recipe.md §6, docs/sources.md): MB/s per core through each source's whole
pass, records in/out per stage with reasons, and tokens. Goal (issue 17): >= 3 MB/s per core.

notebooks  real notebooks from PyPI source distributions (downloaded once into --cache with
           ``pip download --no-binary :all: --no-deps``): each sdist's ``.ipynb`` files and license
           files are one repository. ``stackcoder build`` with 1 worker; the notebook source's time
           is the extraction step (in the file filter pass) plus the wall time of every pass of the
           ``jupyter_scripts`` and ``jupyter_structured`` parts; MB are the notebooks' bytes.
text       ``--text`` kinds on real text: ``docs`` = the Markdown/reST files of the same sdists and of
           this interpreter's site-packages (near dedup, no PII), ``meta`` = the ``METADATA`` files
           of the installed distributions (PII, exact dedup). Time: the wall time of each kind's
           passes (intake, dedup, final); MB: the input records' text.
reference  ``json.loads`` of every notebook, and reading the text inputs, alone.

    python benchmarks/bench_sources.py --tokenizer /work/demo-out/tokenizer/tokenizer.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from pathlib import Path

from stackcoder.data import executor
from stackcoder.data.build import BuildConfig, build
from stackcoder.data.executor import RunOptions, configure_logs

# sdists that ship notebooks (docs, examples, test notebooks), pinned so the corpus stays the same
PACKAGES = [
    "jupytext==1.16.4",
    "nbconvert==7.16.4",
    "nbsphinx==0.9.5",
    "nbformat==5.11.1",
    "nbclient==0.10.0",
    "nbval==0.11.0",
    "papermill==2.6.0",
    "hvplot==0.10.0",
    "xarray==2024.7.0",
    "lmfit==1.3.2",
    "holoviews==1.19.1",
]
LICENSE_NAMES = ("license", "licence", "copying", "notice")


def download(cache: Path) -> list[Path]:
    sdists = cache / "sdists"
    sdists.mkdir(parents=True, exist_ok=True)
    # pip prepares each sdist's metadata with its build backend; a machine-wide constraints file can
    # make that fail, and constraints do not matter for a download without dependencies
    env = {**os.environ, "PIP_CONSTRAINT": ""}
    for spec in PACKAGES:
        name, version = spec.split("==")
        stem = f"{name.replace('-', '_')}-{version}".lower()
        if not any(p.name.lower().replace("-", "_").startswith(stem) for p in sdists.iterdir()):
            cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps"]
            subprocess.run([*cmd, "-d", str(sdists), spec], check=True, env=env)
    return sorted(sdists.iterdir())


def notebook_repos(cache: Path, sdists: list[Path]) -> list[Path]:
    """One repository per sdist: its notebooks and license files, at their paths."""
    repos = []
    for sdist in sdists:
        repo = cache / "repos" / sdist.name.removesuffix(".tar.gz").removesuffix(".zip")
        repos.append(repo)
        if repo.is_dir():
            continue
        tmp = repo.with_name(repo.name + ".tmp")
        with tarfile.open(sdist) as tar:
            for m in tar.getmembers():
                parts = Path(m.name).parts[1:]
                name = parts[-1].lower() if parts else ""
                wanted = name.endswith(".ipynb") or (len(parts) == 1 and name.startswith(LICENSE_NAMES))
                if m.isfile() and wanted and ".." not in parts:
                    target = tmp.joinpath(*parts)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(tar.extractfile(m).read())
        tmp.rename(repo)
    return repos


def text_inputs(cache: Path, sdists: list[Path], max_mb: float) -> tuple[Path, Path]:
    """``docs.jsonl`` (Markdown/reST pages, ``site`` = the package) and ``meta.jsonl`` (METADATA)."""
    docs, meta = cache / "docs.jsonl", cache / "meta.jsonl"
    if docs.is_file() and meta.is_file():
        return docs, meta
    pages: list[dict] = []
    for sdist in sdists:
        with tarfile.open(sdist) as tar:
            for m in tar.getmembers():
                if m.isfile() and m.name.endswith((".md", ".rst")):
                    text = tar.extractfile(m).read().decode("utf-8", "replace")
                    pages.append({"text": text, "site": sdist.name, "path": m.name})
    for path in sorted(Path(sysconfig.get_paths()["purelib"]).rglob("*")):
        if sum(len(p["text"]) for p in pages) > max_mb * 1e6:
            break
        if path.suffix in (".md", ".rst") and path.is_file():
            pages.append(
                {"text": path.read_text("utf-8", "replace"), "site": "site-packages", "path": path.name}
            )
    docs.write_text("".join(json.dumps(p) + "\n" for p in pages))
    metadata = sorted(Path(sysconfig.get_paths()["purelib"]).glob("*.dist-info/METADATA"))
    rows = [{"text": p.read_text("utf-8", "replace"), "id": p.parent.name} for p in metadata]
    meta.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return docs, meta


def cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (a 1-worker pass runs in-process)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_passes() -> tuple[dict[str, float], dict[str, float]]:
    """Wall and CPU seconds of each pass the build runs (``run_passes`` calls
    ``executor.run_steps``). On a shared machine CPU seconds are the per-core figure: wall time
    also counts the time other processes held the cores."""
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    run_steps = executor.run_steps

    def timed(steps, *, logging_dir, **kwargs):
        start, start_cpu = time.perf_counter(), cpu_seconds()
        run_steps(steps, logging_dir=logging_dir, **kwargs)
        wall[logging_dir.name] = time.perf_counter() - start
        cpu[logging_dir.name] = cpu_seconds() - start_cpu

    executor.run_steps = timed
    return wall, cpu


def extraction_cpu(notebooks: list[Path]) -> float:
    """CPU seconds of ``NotebookExtractor`` (parse, convert, license rule, write both parts) on
    every notebook, as the filter pass runs it (its own timer there counts wall time)."""
    from datatrove.data import Document

    from stackcoder.data import fields as F
    from stackcoder.data.jupyter.extractor import SCRIPTS, STRUCTURED, NotebookExtractor
    from stackcoder.data.parts import PartLayout

    docs = [
        Document(
            text=p.read_text("utf-8", "replace"),
            id=str(p),
            metadata={
                F.REPO_NAME: p.parent.name,
                F.PATH: p.name,
                F.LICENSE_TYPE: "permissive",
                F.SOURCE: "x",
            },
        )
        for p in notebooks
    ]
    with tempfile.TemporaryDirectory() as tmp:
        step = NotebookExtractor([PartLayout(Path(tmp), SCRIPTS), PartLayout(Path(tmp), STRUCTURED)])
        list(step.run(iter(docs[:5])))  # imports and first-call costs out of the measure
        start = time.process_time()
        list(step.run(iter(docs)))
        return time.process_time() - start


def tokens(folder: Path, tokenizer: str | None) -> int | None:
    if not tokenizer:
        return None
    import pyarrow.parquet as pq
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(tokenizer)
    texts = [
        t for f in sorted(folder.glob("*.parquet")) for t in pq.read_table(f, columns=["text"])[0].to_pylist()
    ]
    return sum(len(e.ids) for e in tok.encode_batch_fast(texts)) if texts else 0


def stage_line(part: dict) -> str:
    cells = []
    for s in part["stages"]:
        for reason, c in sorted(s["removed"].items(), key=lambda kv: -kv[1]["files"]):
            cells.append(f"`{s['stage']}` −{c['files']} `{reason}`")
    return "; ".join(cells) or "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "stackcoder" / "bench-sources")
    ap.add_argument("--tokenizer", help="tokenizer.json to count the kept records' tokens with")
    ap.add_argument("--docs-mb", type=float, default=10.0, help="Markdown/reST to read at most")
    args = ap.parse_args()

    sdists = [p for p in download(args.cache) if p.name.endswith(".tar.gz")]
    repos = notebook_repos(args.cache, sdists)
    docs, meta = text_inputs(args.cache, sdists, args.docs_mb)
    notebooks = [p for r in repos for p in r.rglob("*.ipynb")]
    nb_bytes = sum(p.stat().st_size for p in notebooks)
    text_bytes = {
        kind: sum(len(json.loads(line)["text"].encode()) for line in f.open())
        for kind, f in (("docs", docs), ("meta", meta))
    }

    start = time.perf_counter()
    for p in notebooks:
        with contextlib.suppress(ValueError):  # a broken notebook costs its parse attempt
            json.loads(p.read_bytes())
    json_s = time.perf_counter() - start

    configure_logs()  # warnings only, as the CLI
    wall_s, seconds = timed_passes()
    with tempfile.TemporaryDirectory() as tmp:
        # fixed costs first: the same passes on one notebook and one record per kind (imports warm)
        tiny = Path(tmp) / "tiny"
        shutil.copytree(repos[0], tiny / "repo")
        for nb in list((tiny / "repo").rglob("*.ipynb"))[1:]:
            nb.unlink()
        for kind, f in (("docs", docs), ("meta", meta)):
            (tiny / f"{kind}.jsonl").write_text(f.open().readline())
        texts = [f"{kind}={tiny / f'{kind}.jsonl'}" for kind in ("docs", "meta")]
        run = RunOptions(workers=1, progress=False)
        build(BuildConfig(sources=[str(tiny / "repo")], output=Path(tmp) / "tiny-out", texts=texts, run=run))
        fixed = dict(seconds)
        seconds.clear()
        wall_s.clear()
        config = BuildConfig(
            sources=[str(r) for r in repos],
            output=Path(tmp) / "out",
            texts=[f"docs={docs}", f"meta={meta}"],
            run=run,
        )
        start = time.perf_counter()
        stats = build(config).stats
        wall = time.perf_counter() - start
        out = config.output
        filter_stats = json.loads((out / "logs" / "filter" / "stats.json").read_text())
        # the extraction step's own timer (a step of the file filter pass), wall seconds
        extract_wall = next(b["time_stats"]["total"] for b in filter_stats if "Notebooks" in b["name"])
        token_counts = {name: tokens(out / name, args.tokenizer) for name in stats["parts"]}

    extract_s = extraction_cpu(notebooks)
    # notebooks cost about the same per cell whatever their outputs weigh: MB/s by size
    big = [p for p in notebooks if p.stat().st_size >= 64_000]
    small = [p for p in notebooks if p.stat().st_size < 64_000]
    by_size = [
        (name, sum(p.stat().st_size for p in group) / 1e6, extraction_cpu(group), len(group))
        for name, group in (("≥ 64 KB", big), ("< 64 KB", small))
    ]

    def part_seconds(prefix: str, of: dict[str, float] | None = None) -> float:
        return sum(s for name, s in (of or seconds).items() if name.startswith(prefix + "."))

    def fixed_seconds(prefix: str) -> float:
        return part_seconds(prefix, fixed)

    mb = nb_bytes / 1e6
    print(
        f"build wall {wall:.1f} s (1 worker); {len(repos)} repositories, "
        f"{len(notebooks):,} notebooks, {mb:.1f} MB"
    )
    scripts_s, structured_s = part_seconds("jupyter_scripts"), part_seconds("jupyter_structured")
    nb_s = extract_s + scripts_s + structured_s
    print("\n| source | MB in | CPU seconds | MB/s per core |\n|---|---|---|---|")
    how = f"extraction {extract_s:.1f} s + scripts {scripts_s:.1f} s + structured {structured_s:.1f} s"
    print(f"| notebooks: {how} | {mb:.1f} | {nb_s:.1f} | **{mb / nb_s:.2f}** |")
    nb_fixed = fixed_seconds("jupyter_scripts") + fixed_seconds("jupyter_structured")
    rest = nb_s - nb_fixed
    print(f"| notebooks less fixed cost ({nb_fixed:.1f} s) | {mb:.1f} | {rest:.1f} | {mb / rest:.2f} |")
    for kind in ("docs", "meta"):
        s = part_seconds(f"text-{kind}")
        shown = ", ".join(
            f"{n.split('.', 1)[1]} {v:.1f}" for n, v in seconds.items() if n.startswith(f"text-{kind}.")
        )
        kind_mb = text_bytes[kind] / 1e6
        print(f"| text/{kind}: {shown} | {kind_mb:.1f} | {s:.1f} | **{kind_mb / s:.2f}** |")
        rest = s - fixed_seconds(f"text-{kind}")
        print(f"| text/{kind} less fixed cost | {kind_mb:.1f} | {rest:.1f} | {kind_mb / rest:.2f} |")
    print(f"| reference: json.loads of every notebook | {mb:.1f} | {json_s:.2f} | {mb / json_s:.1f} |")
    print("\n| part | seen | removed (stage, reason) | kept | MB kept | tokens |\n|---|---|---|---|---|---|")
    for name, part in stats["parts"].items():
        t = part["totals"]
        n_tok = token_counts[name]
        tok = f"{n_tok / 1e6:.2f} M" if n_tok is not None else "-"
        row = [
            name,
            f"{t['files_seen']:,}",
            stage_line(part),
            f"{t['files_kept']:,}",
            f"{t['bytes_kept'] / 1e6:.2f}",
            tok,
        ]
        print("| " + " | ".join(row) + " |")
    print("\nstep seconds per part (final pass):")
    for name, part in stats["parts"].items():
        print(
            f"  {name}: "
            + ", ".join(f"{s['stage']} {s['time_s']:.2f}" for s in part["stages"] if s["time_s"])
        )
    print(f"\nextraction: {extract_s:.2f} CPU s alone, {extract_wall:.2f} s by its step timer in the build")
    for name, size_mb, cpu, n in by_size:
        print(
            f"  notebooks {name}: {n} notebooks, {size_mb:.1f} MB, {cpu:.2f} CPU s, {size_mb / cpu:.1f} MB/s"
        )
    print(
        "fixed CPU seconds (1 notebook, 1 record per kind):",
        json.dumps({k: round(v, 2) for k, v in fixed.items()}),
    )
    print("pass CPU seconds:", json.dumps({k: round(v, 2) for k, v in seconds.items()}))
    print("pass wall seconds:", json.dumps({k: round(v, 2) for k, v in wall_s.items()}))


if __name__ == "__main__":
    main()
