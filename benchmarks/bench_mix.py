#!/usr/bin/env python
"""The training mix (recipe.md §6, the paper's Table 4) on real inputs: per-source tokens, the time
`stackcoder tokenize` takes over several sources, and whether the loader's draws give each source
its share.

Sources: the demo dataset's repository documents (``--demo``, `scripts/demo.sh`), and one build of
the other sources' benchmark inputs: real notebooks from PyPI sdists and their Markdown/reST pages
(``benchmarks/bench_sources.py``'s cache; ``--text docs``), and GitHub issues and pull requests
(``benchmarks/bench_events.py``'s stream: GitHub's webhook examples with paragraphs of installed
packages' docs, PR contents from git repositories of installed packages). ``stackcoder tokenize``
then reads the demo's documents and the build's parts as one mix (default: 1 epoch each, the
near-uniform sampling recipe.md §6 infers; ``--epochs NAME=E`` to change).

Loader: ``PackedLoader`` over the train shards as the trainer builds it (FIM per source), ``--rows``
lanes of ``--seq-len`` tokens for ``--batches`` batches: documents drawn per source against the
probability tokens.json records, and tokens read per source against the expected share; batches/s
with the mix and with the documents alone.

    python benchmarks/bench_mix.py --demo /work/demo-out --json mix.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

import bench_events  # noqa: E402
import bench_sources  # noqa: E402

PARTS = ["jupyter_scripts", "jupyter_structured", "issues", "pull_requests", "text/docs"]


def build_parts(root: Path, cache: Path, issues: int, prs: int) -> Path:
    """One `stackcoder build` of the notebooks, docs pages and GHArchive events."""
    from stackcoder.data.build import BuildConfig, build
    from stackcoder.data.executor import RunOptions

    sdists = [p for p in bench_sources.download(cache) if p.name.endswith(".tar.gz")]
    notebooks = bench_sources.notebook_repos(cache, sdists)
    docs, _meta = bench_sources.text_inputs(cache, sdists, 10.0)
    dumps, pr_repos = bench_events.make_stream(root, issues, prs, 4, 0)
    config = BuildConfig(
        sources=[str(p) for p in notebooks] + [str(p) for p in sorted(pr_repos.iterdir())],
        output=root / "parts",
        texts=[f"docs={docs}"],
        events=[str(d) for d in dumps],
        run=RunOptions(progress=False),
    )
    build(config)
    return config.output


def loader_check(tokens: Path, tokenizer: Path, rows: int, seq_len: int, batches: int) -> dict:
    """Draws and tokens per source over ``batches`` batches, against tokens.json's mix; batches/s."""
    from stackcoder.data.mix import mix_sources
    from stackcoder.tokenizer.files import load_tokenizer
    from stackcoder.train.dataset import MixSource, PackedLoader, TokenShards
    from stackcoder.train.fim import Fim

    tok = load_tokenizer(tokenizer)
    info = json.loads((tokens / "tokens.json").read_text())
    mix = mix_sources(info)
    sources = [
        MixSource(
            TokenShards(tokens / "train" / s["dir"]),
            s["probability"],
            Fim(tok, mode=s["fim"]) if s["fim"] != "none" else None,
            s["name"],
        )
        for s in mix
    ]
    loader = PackedLoader(sources, seq_len=seq_len, lanes=rows, seed=0)
    start = time.perf_counter()
    for _ in range(batches):
        loader.next_batch()
    mix_s = time.perf_counter() - start
    # replay each lane's draws: which source, and how many (pre-FIM) tokens each finished document had
    docs = np.zeros(len(sources))
    toks = np.zeros(len(sources))
    for lane in range(rows):
        places = [[0, 0] for _ in sources]
        for k in range(loader.state[lane]["draw"]):
            s = loader._source(lane, k)
            epoch, index = places[s]
            doc = int(loader._order(lane, epoch, s)[index])
            docs[s] += 1
            toks[s] += len(sources[s].shards.document(doc))
            index += 1
            places[s] = [epoch + 1, 0] if index == len(loader.source_docs[s][lane]) else [epoch, index]
    one = PackedLoader(sources[0].shards, seq_len=seq_len, lanes=rows, seed=0, fim=sources[0].fim)
    start = time.perf_counter()
    for _ in range(batches):
        one.next_batch()
    one_s = time.perf_counter() - start
    return {
        "rows": rows,
        "seq_len": seq_len,
        "batches": batches,
        "documents_drawn": int(docs.sum()),
        "per_source": {
            s["name"]: {
                "probability": round(s["probability"], 4),
                "drawn_share": round(float(docs[k] / docs.sum()), 4),
                "token_share": round(s["token_share"], 4),
                "read_token_share": round(float(toks[k] / toks.sum()), 4),
                "epochs_seen": round(float(docs[k] / len(sources[k].shards)), 3),
            }
            for k, s in enumerate(mix)
        },
        "batches_per_s_mix": round(batches / mix_s, 1),
        "batches_per_s_documents_only": round(batches / one_s, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--demo", type=Path, default=Path("/work/demo-out"), help="the demo dataset (scripts/demo.sh)"
    )
    ap.add_argument("--tokenizer", type=Path, help="default: DEMO/tokenizer")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "stackcoder" / "bench-sources")
    ap.add_argument("--issues", type=int, default=1000)
    ap.add_argument("--prs", type=int, default=300)
    ap.add_argument("--epochs", action="append", default=[], metavar="NAME=E")
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--batches", type=int, default=400)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument(
        "--workdir", type=Path, help="keep the build and the tokens here (default: a temporary folder)"
    )
    args = ap.parse_args()

    from stackcoder.data.executor import RunOptions, configure_logs
    from stackcoder.data.mix import parse_numbers
    from stackcoder.data.options import TokenizeConfig
    from stackcoder.data.tokenize import tokenize

    configure_logs()
    tokenizer = args.tokenizer or args.demo / "tokenizer"
    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        parts = build_parts(root, args.cache, args.issues, args.prs)
        build_s = time.perf_counter() - t
        config = TokenizeConfig(
            str(parts),
            str(tokenizer),
            output=str(root / "tokens"),
            sources=[f"documents={args.demo / 'documents'}", *PARTS],
            epochs=parse_numbers(args.epochs, "--epochs"),
            overwrite=True,
            run=RunOptions(workers=1, progress=False),
        )
        t = time.perf_counter()
        info = tokenize(config)
        tokenize_s = time.perf_counter() - t
        text_bytes = {
            s["name"]: sum(
                len(x.encode())
                for f in sorted(Path(s["path"]).glob("*.parquet"))
                for x in pq.read_table(f, columns=["text"])[0].to_pylist()
            )
            for s in info["sources"]
        }
        result = {
            "build_parts_s": round(build_s, 1),
            "tokenize_s": round(tokenize_s, 1),
            "tokenize_mb_per_s": round(sum(text_bytes.values()) / 1e6 / tokenize_s, 2),
            "sources": [
                {
                    "name": s["name"],
                    "records": s["train"]["documents"] + s["valid"]["documents"],
                    "text_mb": round(text_bytes[s["name"]] / 1e6, 2),
                    "train_tokens": s["train"]["tokens"],
                    "valid_tokens": s["valid"]["tokens"],
                    "token_share": round(s["token_share"], 4),
                    "epochs": s["epochs"],
                    "probability": round(s["probability"], 4),
                    "fim": s["fim"],
                }
                for s in info["sources"]
            ],
            "loader": loader_check(root / "tokens", tokenizer, args.rows, args.seq_len, args.batches),
        }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
