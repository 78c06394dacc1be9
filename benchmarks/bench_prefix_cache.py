"""Time to first token after a one-line edit, with the prefix cache, as a fraction of a cold request's
(issue 14: editors resend their ~1,024-token window after every pause; goal <= 15% at the 3B shape).

The window is real code (this repository's sources) cut around a cursor as llm-ls cuts it (recipe.md
§5: lines alternately before and after the cursor until 1,024 tokens), in the server's FIM order.
The edit inserts a few characters in the middle of the cursor's line, the last line of the prefix,
so in SPM order (the server's default) it is near the end of the prompt. TTFT is measured through
the engine (``Engine.submit`` to the first token, as the routes use it, 1 new token): cold = an
empty prefix cache, warm = the unedited window cached (and nothing else), alternating, each edit a
different one; the ratio is the median of the pairs' ratios. The same edit in PSM
order shows why the order matters; the breakdown shows what a warm request spends besides the
prefill (tokenizing the window, copying cached keys and values in, loading the slot).

The order measurement needs no model: over many cursors in real files, how many tokens of the edited
prompt are a common prefix of the previous one, PSM vs SPM, for typing at the cursor and for a new
line, with llm-ls's token-budget window (whose edges move when the cursor line grows) and with a
fixed range of lines (as llama.vim and Continue cut).

    python benchmarks/bench_prefix_cache.py --size 3b --layers 4      # the 3B width, 4 random layers
    python benchmarks/bench_prefix_cache.py --model DIR                # a checkpoint (the full 3B: GPU)
    python benchmarks/bench_prefix_cache.py --smoke                    # debug model, seconds

``bench_prefix_cache(DIR)`` returns the numbers (benchmarks/bench_released.py calls it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from stackcoder.model.generate import SamplingParams  # noqa: E402
from stackcoder.serve.engine import Engine  # noqa: E402
from stackcoder.serve.prefix_cache import PrefillCache, PrefixCache  # noqa: E402
from stackcoder.tokenizer.files import encode  # noqa: E402
from stackcoder.tokenizer.prompts import fim_ids  # noqa: E402

FIXTURE_TOKENIZER = ROOT / "tests" / "fixtures" / "model"
GOAL = 0.15
SOURCES = sorted((ROOT / "src" / "stackcoder").rglob("*.py"))


# ---- windows as editors cut them -----------------------------------------------------------------


def llm_ls_lines(tok, lines: list[str], line: int, col: int, budget: int) -> tuple[int, int]:
    """llm-ls's ``build_prompt``: lines alternately before (the cursor's line up to the cursor first)
    and after the cursor, each counted in tokens, until one does not fit. Returns the range of lines
    [first, last] the window covers."""
    before = [lines[line][:col], *reversed(lines[:line])]
    after = [lines[line][col:], *lines[line + 1 :]]
    first, last = line, line
    for i in range(max(len(before), len(after))):
        if i < len(before):
            n = len(encode(tok, before[i]))
            if n > budget:
                break
            budget, first = budget - n, line - i
        if i < len(after):
            n = len(encode(tok, after[i]))
            if n > budget:
                break
            budget, last = budget - n, line + i
    return first, last


def window(lines: list[str], line: int, col: int, first: int, last: int) -> tuple[str, str]:
    """(prefix, suffix) of lines [first, last] around the cursor at (line, col)."""
    prefix = "".join(lines[first:line]) + lines[line][:col]
    return prefix, lines[line][col:] + "".join(lines[line + 1 : last + 1])


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def fim_order(tok, trials: int = 100, budget: int = 1024 - 3, seed: int = 0) -> dict:
    """Tokens of the edited prompt that must be prefilled (after the common prefix with the previous
    prompt), PSM vs SPM, over random cursors at the end of lines in real files."""
    rng = random.Random(seed)
    files = [p.read_text() for p in SOURCES]
    files = [f for f in files if len(encode(tok, f)) > 2 * budget]
    edits = {"type at the cursor": " = x", "new line": "\n    y = f(x)"}
    out: dict = {}
    for _ in range(trials):
        text = rng.choice(files)
        lines = text.splitlines(keepends=True)
        line = rng.randrange(len(lines) // 4, 3 * len(lines) // 4)
        col = len(lines[line].rstrip("\n"))
        for kind, typed in edits.items():
            new_line = lines[line][:col] + typed + lines[line][col:]
            new_lines = lines[:line] + new_line.splitlines(keepends=True) + lines[line + 1 :]
            # the cursor after typing: at the end of what was typed
            new_cursor = (line, col + len(typed)) if "\n" not in typed else (line + 1, len(typed) - 1)
            old_range = llm_ls_lines(tok, lines, line, col, budget)
            for policy in ("llm-ls window", "fixed lines"):
                if policy == "llm-ls window":
                    new_range = llm_ls_lines(tok, new_lines, *new_cursor, budget)
                else:  # the same lines, the edit inside them
                    new_range = (old_range[0], old_range[1] + typed.count("\n"))
                before = window(lines, line, col, *old_range)
                after = window(new_lines, *new_cursor, *new_range)
                for order in ("psm", "spm"):
                    a = fim_ids(tok, *before, spm=order == "spm")
                    b = fim_ids(tok, *after, spm=order == "spm")
                    out.setdefault((kind, policy, order), []).append((len(b), len(b) - common_prefix(a, b)))
    table = {}
    for (kind, policy, order), runs in out.items():
        table.setdefault(kind, {}).setdefault(policy, {})[order] = {
            "prompt_tokens": round(statistics.mean(n for n, _ in runs)),
            "reused": round(statistics.mean(1 - p / n for n, p in runs), 3),
            "prefilled_median": statistics.median(p for _, p in runs),
        }
    return table


# ---- time to first token ---------------------------------------------------------------------------


def editor_window(tok, budget: int = 1024 - 3) -> tuple[list[str], int, int, tuple[int, int]]:
    """A file, a cursor at the end of a line in its middle, and the llm-ls line range around it."""
    text = max((p.read_text() for p in SOURCES), key=len)
    lines = text.splitlines(keepends=True)
    line = len(lines) // 2
    while len(lines[line].strip()) < 20:  # a line with something to edit in its middle
        line += 1
    col = len(lines[line].rstrip("\n"))
    return lines, line, col, llm_ls_lines(tok, lines, line, col, budget)


def edited(lines: list[str], line: int, col: int, i: int) -> tuple[list[str], int]:
    """Edit i: a few characters typed in the middle of the cursor's line; the lines and the cursor's
    new column (it stays at the end of the line)."""
    mid, typed = col // 2, f"z{i}"
    return [*lines[:line], lines[line][:mid] + typed + lines[line][mid:], *lines[line + 1 :]], col + len(
        typed
    )


def ttft(engine: Engine, ids: list[int]) -> float:
    async def first() -> float:
        start = time.perf_counter()
        handle = engine.submit(ids, SamplingParams(max_new_tokens=1), timeout_s=600)
        async for _ in handle.pieces():
            return time.perf_counter() - start
        raise RuntimeError("no token")

    seconds = asyncio.run(first())
    while engine.rows or engine.waiting:  # the engine caches the prompt after its first token: let it
        time.sleep(0.001)
    return seconds


def measure(model, tok, repeats: int = 5) -> dict:
    """Cold vs warm TTFT after a one-line edit near the end of a ~1,024-token window, SPM and PSM."""
    lines, line, col, (first, last) = editor_window(tok)
    context = model.config.max_position_embeddings
    result: dict = {"repeats": repeats}
    for order in ("spm", "psm"):

        def prompt(ls: list[str], c: int, order: str = order) -> list[int]:
            return fim_ids(tok, *window(ls, line, c, first, last), spm=order == "spm")

        base = prompt(lines, col)
        edits = [prompt(*edited(lines, line, col, i)) for i in range(repeats + 1)]
        engine = Engine(model, tok, max_batch=1, max_queue=1, max_len=context, prefix_cache_bytes=2**31)
        with torch.inference_mode():  # the unedited window's keys and values, as the engine keeps them
            kept = PrefillCache(model, len(base))
            model(torch.tensor([base], device=kept.k.device), cache=kept, logits_to_keep=1)
        cold_s, warm_s, prefilled = [], [], []
        try:
            ttft(engine, edits[-1])  # warm-up: first calls allocate
            # cold and warm alternate, so a busy spell of the machine hits both alike
            for e in edits[:repeats]:
                engine.prefix_cache = PrefixCache(2**31)  # empty: a cold request
                cold_s.append(ttft(engine, e))
                engine.prefix_cache = PrefixCache(2**31)  # the window before the edit, and only it
                engine.prefix_cache.insert(base, kept.k, kept.v)  # (never written to: splits copy)
                before = engine.prefilled_tokens
                warm_s.append(ttft(engine, e))
                prefilled.append(engine.prefilled_tokens - before)
        finally:
            engine.shutdown()
        result[order] = {
            "prompt_tokens": len(base),
            "prefilled_after_edit": max(prefilled),
            "cold_ttft_s": round(statistics.median(cold_s), 4),
            "warm_ttft_s": round(statistics.median(warm_s), 4),
            "cold_ttft_s_min": round(min(cold_s), 4),
            "warm_ttft_s_min": round(min(warm_s), 4),
            # the median of each pair's ratio
            "ratio": round(statistics.median(w / c for w, c in zip(warm_s, cold_s, strict=True)), 4),
        }
    result["breakdown_spm"] = breakdown(model, tok, lines, line, col, first, last)
    return result


def breakdown(model, tok, lines, line, col, first, last) -> dict:
    """What a warm request spends besides its prefill, in seconds (the median of 5)."""
    from stackcoder.serve.engine import SlotCache

    prefix, suffix = window(lines, line, col, first, last)
    tree = PrefixCache(2**31)
    base = fim_ids(tok, prefix, suffix, spm=True)
    new_lines, new_col = edited(lines, line, col, 0)
    new = fim_ids(tok, *window(new_lines, line, new_col, first, last), spm=True)
    slots = SlotCache(model, 1, model.config.max_position_embeddings)
    cuda = next(model.parameters()).is_cuda
    times: dict[str, list[float]] = {}

    def timed(name, fn):  # noqa: ANN001, ANN202
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        out = fn()
        if cuda:
            torch.cuda.synchronize()
        times.setdefault(name, []).append(time.perf_counter() - t)
        return out

    with torch.inference_mode():
        first_cache = PrefillCache(model, len(base))
        model(torch.tensor([base], device=first_cache.k.device), cache=first_cache, logits_to_keep=1)
        tree.insert(base, first_cache.k, first_cache.v)
        for _ in range(5):
            timed("tokenize_window", lambda: fim_ids(tok, prefix, suffix, spm=True))
            cache = timed("allocate", lambda: PrefillCache(model, len(new)))
            L = timed("copy_cached_in", lambda: tree.fill(new, cache, limit=len(new) - 1))  # noqa: B023
            ids = torch.tensor([new[L:]], device=cache.k.device)
            timed("prefill_new_tokens", lambda: model(ids, cache=cache, logits_to_keep=1))  # noqa: B023
            timed("load_slot", lambda: slots.load(0, cache))  # noqa: B023
    return {name: round(statistics.median(t), 5) for name, t in times.items()}


def bench_prefix_cache(
    checkpoint: str | Path, *, device: str = "auto", dtype: str = "auto", repeats: int = 5
) -> dict:
    """The TTFT ratio and the FIM-order table for a checkpoint directory (weights and tokenizer)."""
    from stackcoder.model.hf import DTYPES, load_model
    from stackcoder.tokenizer.files import load_tokenizer

    dev = device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    dt = None if dtype == "auto" and dev == "cpu" else DTYPES.get(dtype, torch.bfloat16)
    model = load_model(checkpoint, dtype=dt, device=dev)
    tok = load_tokenizer(checkpoint)
    return run(model, tok, repeats, name=str(checkpoint))


def run(model, tok, repeats: int, name: str) -> dict:
    cfg = model.config
    result = {
        "model": name,
        "shape": {k: getattr(cfg, k) for k in ("hidden_size", "num_hidden_layers", "num_key_value_heads")},
        "device": next(model.parameters()).device.type,
        "dtype": str(next(model.parameters()).dtype),
        "threads": torch.get_num_threads(),
        "ttft": measure(model, tok, repeats),
        "fim_order": fim_order(tok),
        "goal_ratio": GOAL,
    }
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, help="a checkpoint directory (default: a random model made here)")
    ap.add_argument("--size", default="3b", help="the shape of the random model (model/config.py SIZES)")
    ap.add_argument(
        "--layers", type=int, default=4, help="layers of the random model (the width is the size's)"
    )
    ap.add_argument("--tokenizer", type=Path, default=FIXTURE_TOKENIZER, help="for the random model")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--smoke", action="store_true", help="the debug shape: checks the script in seconds")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()
    if args.model:
        result = bench_prefix_cache(args.model, device=args.device, dtype=args.dtype, repeats=args.repeats)
    else:
        from stackcoder.model import Starcoder2, get_size
        from stackcoder.tokenizer.files import load_tokenizer

        size, layers = ("debug", 2) if args.smoke else (args.size, args.layers)
        torch.manual_seed(0)
        cfg = get_size(size, num_hidden_layers=layers)
        if args.smoke:  # the debug shape's 512 positions cannot hold a 1,024-token window
            cfg = get_size(size, num_hidden_layers=layers, max_position_embeddings=2048, vocab_size=400)
        dev = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        dt = (
            torch.float32
            if dev == "cpu" and args.dtype == "auto"
            else getattr(torch, args.dtype, torch.bfloat16)
        )
        model = Starcoder2(cfg).to(device=dev, dtype=dt).eval()
        result = run(
            model, load_tokenizer(args.tokenizer), args.repeats, name=f"random {size}, {layers} layers"
        )
    print(json.dumps(result, indent=2))
    spm = result["ttft"]["spm"]
    print(
        f"\nTTFT after a one-line edit near the end of a {spm['prompt_tokens']}-token window (SPM): "
        f"cold {spm['cold_ttft_s'] * 1000:.1f} ms, warm {spm['warm_ttft_s'] * 1000:.1f} ms, "
        f"ratio {spm['ratio']:.1%} (goal <= {GOAL:.0%}); PSM: {result['ttft']['psm']['ratio']:.1%}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
