"""Training on the CPU, and what feeds it: tokens/s of our training step against a plain transformers
loop on the same batches, the loader's tokens/s (ours with and without FIM, and datatrove's
``DatatroveFolderDataset``, what nanotron reads the same shards with) and the FIM transform alone.

    python benchmarks/bench_train.py --data out/demo/tokens          # after ./scripts/demo.sh
    python benchmarks/bench_train.py --data DIR --smoke               # seconds: checks the script

The loader must be far faster than training consumes; the table gives the ratio. Prints a Markdown
table for docs/benchmarks.md; ``--json FILE`` writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from stackcoder.tokenizer.files import load_tokenizer  # noqa: E402
from stackcoder.train.config import apply  # noqa: E402
from stackcoder.train.dataset import PackedLoader, TokenShards  # noqa: E402
from stackcoder.train.fim import Fim  # noqa: E402
from stackcoder.train.presets import get_preset  # noqa: E402
from stackcoder.train.trainer import Trainer, resolve_tokens  # noqa: E402


def timed(fn, seconds: float, min_calls: int = 3) -> tuple[int, float]:
    """Call ``fn`` until ``seconds`` have passed (at least ``min_calls`` times): calls and time."""
    calls, start = 0, time.perf_counter()
    while calls < min_calls or time.perf_counter() - start < seconds:
        fn()
        calls += 1
    return calls, time.perf_counter() - start


def bench_training(tokens: Path, size: str, seq_len: int, steps: int, out: Path) -> dict:
    """Our Trainer.train_step (document masking, FIM loader batches, AdamW, clipping) vs
    transformers' Starcoder2ForCausalLM with torch's AdamW on the same batches and weights."""
    import transformers

    cfg = apply(
        get_preset("cpu_tiny"),
        {
            "model": {"size": size},
            "data": {"path": str(tokens), "seq_len": seq_len},
            "training": {"max_steps": 10**6},
        },
        "bench",
    )
    trainer = Trainer(cfg, out / f"run-{size}", progress=False, overwrite=True)
    batches = [trainer.loader.next_batch() for _ in range(steps + 1)]
    theirs = transformers.Starcoder2ForCausalLM(
        transformers.Starcoder2Config(**trainer.model_config.to_hf_dict())
    )
    theirs.load_state_dict(trainer.raw_model.state_dict())
    theirs.train()
    optim = torch.optim.AdamW(
        theirs.parameters(), lr=cfg.optimizer.lr, weight_decay=cfg.optimizer.weight_decay
    )

    def hf_step(b) -> None:
        mb = cfg.training.micro_batch
        n = b.tokens
        for i in range(0, b.input_ids.shape[0], mb):
            rows = slice(i, i + mb)
            logits = theirs(input_ids=b.input_ids[rows]).logits
            loss = torch.nn.functional.cross_entropy(
                logits.flatten(0, 1).float(), b.targets[rows].flatten(), ignore_index=-100, reduction="sum"
            )
            (loss / n).backward()
        torch.nn.utils.clip_grad_norm_(theirs.parameters(), cfg.optimizer.grad_clip)
        optim.step()
        optim.zero_grad(set_to_none=True)

    result = {}
    for name, step in (("stackcoder", trainer.train_step), ("transformers", hf_step)):
        step(batches[0])  # warm-up
        start = time.perf_counter()
        for b in batches[1:]:
            step(b)
        seconds = time.perf_counter() - start
        result[name] = {"tokens_per_s": round(steps * cfg.training.global_batch * seq_len / seconds, 1)}
    result["ratio"] = round(result["stackcoder"]["tokens_per_s"] / result["transformers"]["tokens_per_s"], 3)
    result["params_m"] = round(trainer.model_config.num_parameters() / 1e6, 2)
    return result


def bench_loader(tokens: Path, seq_len: int, rows: int, seconds: float) -> dict:
    from datatrove.utils.dataset import DatatroveFolderDataset

    info = json.loads((tokens / "tokens.json").read_text())
    tok = load_tokenizer(info["tokenizer"])
    shards = TokenShards(tokens / "train")
    result = {}
    for name, fim in (("stackcoder + FIM", Fim(tok)), ("stackcoder, no FIM", None)):
        loader = PackedLoader(shards, seq_len=seq_len, lanes=rows, seed=0, fim=fim)
        calls, t = timed(loader.next_batch, seconds)
        result[name] = {"tokens_per_s": round(calls * rows * seq_len / t, 1)}
    ds = DatatroveFolderDataset(
        str(tokens / "train"), seq_len=seq_len, token_size=info["token_bytes"], shuffle=True
    )
    order = np.random.default_rng(0).permutation(len(ds))
    cursor = iter(np.tile(order, 1000))

    def datatrove_batch() -> None:
        torch.stack([ds[int(next(cursor))]["input_ids"] for _ in range(rows)])

    calls, t = timed(datatrove_batch, seconds)
    result["datatrove DatatroveFolderDataset (nanotron)"] = {
        "tokens_per_s": round(calls * rows * seq_len / t, 1)
    }
    return result


def bench_fim(tokens: Path, seconds: float) -> dict:
    """Every file of every document transformed (rate 1, file rate 1), against encoding the same text."""
    info = json.loads((tokens / "tokens.json").read_text())
    tok = load_tokenizer(info["tokenizer"])
    shards = TokenShards(tokens / "train")
    docs = [shards.document(i) for i in range(len(shards))]
    text_bytes = sum(len(tok.decode(d.tolist(), skip_special_tokens=False).encode()) for d in docs)
    fim = Fim(tok, rate=1.0, file_rate=1.0)
    rng = np.random.default_rng(0)
    calls, t = timed(lambda: [fim(d, rng) for d in docs], seconds, 1)
    texts = [tok.decode(d.tolist(), skip_special_tokens=False) for d in docs]
    # the reference: the same text encoded once, through the same fast path (no offsets, batched)
    ecalls, et = timed(lambda: tok.encode_batch_fast(texts, add_special_tokens=False), seconds, 1)
    return {
        "fim_mb_per_s": round(calls * text_bytes / t / 1e6, 2),
        "encode_mb_per_s": round(ecalls * text_bytes / et / 1e6, 2),
        "documents": len(docs),
        "text_mb": round(text_bytes / 1e6, 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data", default="out/demo/tokens", help="`stackcoder tokenize` output (default: %(default)s)"
    )
    ap.add_argument(
        "--smoke", action="store_true", help="tiny sizes and short timings: checks the script runs"
    )
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--work", default="/tmp/stackcoder-bench-train", help="scratch directory for the runs")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        tokens, _ = resolve_tokens(args.data)
    except Exception as e:  # a UserError: say what to run first
        raise SystemExit(f"bench_train: {e} (./scripts/demo.sh makes out/demo/tokens)") from None
    work = Path(args.work)
    cases = [("debug", 64, 3)] if args.smoke else [("tiny", 256, 10), ("small", 512, 5)]
    seconds = 0.5 if args.smoke else 5.0
    results = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
    }
    results["train"] = {f"{s}@{T}": bench_training(tokens, s, T, n, work) for s, T, n in cases}
    T = cases[-1][1]
    results["loader"] = bench_loader(tokens, T, 8, seconds)
    results["fim"] = bench_fim(tokens, seconds)

    print("| case | stackcoder tokens/s | transformers tokens/s | ratio |")
    print("|---|---|---|---|")
    for case, r in results["train"].items():
        print(
            f"| train step, {case} ({r['params_m']}M) | {r['stackcoder']['tokens_per_s']:,.0f} | "
            f"{r['transformers']['tokens_per_s']:,.0f} | {r['ratio']:.2f}x |"
        )
    consumed = results["train"][f"{cases[-1][0]}@{T}"]["stackcoder"]["tokens_per_s"]
    print(f"\n| loader, {T}-token rows × 8 | tokens/s | × what training {cases[-1][0]} consumes |")
    print("|---|---|---|")
    for name, r in results["loader"].items():
        print(f"| {name} | {r['tokens_per_s']:,.0f} | {r['tokens_per_s'] / consumed:,.0f}x |")
    f = results["fim"]
    print(
        f"\nFIM transform, every file of {f['documents']} documents ({f['text_mb']} MB): "
        f"{f['fim_mb_per_s']} MB/s; "
        f"plain encoding of the same text: {f['encode_mb_per_s']} MB/s"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
