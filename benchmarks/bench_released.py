"""Released-size StarCoder2 checkpoints on this CPU (issue 14; shapes recipe.md §3, footprints and
llama.cpp recipe.md §7): per mode (bf16, int8, int4) the load time and peak RSS, time to the first token
after a 1,046-token prompt, decode tokens/s at batch 1, and weight bytes read per token against the
machine's memory bandwidth measured in the same run; transformers (bf16) and, when built, llama.cpp
(BF16, Q8_0, Q4_K_M) on the same checkpoint; the 15B memory check; quantization quality on a model
trained here.

The checkpoint has the published shape with random weights, made tensor by tensor (never the whole
model in memory), stored as the release is (3B fp32, 15B bf16), sharded at 5 GB, and kept in
`--checkpoint-dir` for the next run:

    python benchmarks/bench_released.py --size 3b                         # full 3B: 12 GB fp32 file
    python benchmarks/bench_released.py --size 3b --layers 2              # quick: checks the script
    python benchmarks/bench_released.py --size 15b                        # memory check: 32 GB bf16 file
    python benchmarks/bench_released.py --size 3b --llama-cpp ~/llama.cpp/build/bin \\
        --llama-cpp-src ~/llama.cpp                                       # + llama.cpp side by side
    python benchmarks/bench_released.py --quality-only --quality-model DIR --quality-dataset DATASET

Every measurement runs in a fresh child process (its own peak RSS; VmHWM, which exec resets). Prints
a Markdown report for docs/benchmarks.md; `--json FILE` keeps the numbers. With fewer layers than the
release, the weights may fit the last-level cache: decode speeds are then not the machine's (the
report says so).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

PROMPT_TOKENS = 1046  # the prompt: first token after it
SHARD_BYTES = 5 * 10**9  # transformers' default shard size, as the released checkpoints
STORED = {"3b": "float32", "7b": "float32", "15b": "bfloat16"}  # how the releases are stored
FIXTURE_TOKENIZER = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "model"


# ---- the checkpoint ----------------------------------------------------------------------------------
def make_checkpoint(size: str, layers: int | None, root: Path, stored: str, tokenizer: Path | None) -> Path:
    """A checkpoint directory of `size`'s shape (first `layers` layers) with seeded random weights,
    written one tensor at a time; reused when `root` already has it."""
    import torch

    from stackcoder.model import Starcoder2, get_size
    from stackcoder.model.hf import CONFIG, GENERATION_CONFIG, INDEX, copy_tokenizer

    cfg = get_size(size, **({"num_hidden_layers": layers} if layers else {}))
    path = root / f"{size}-{cfg.num_hidden_layers}layers-{stored}"
    spec = {"size": size, "layers": cfg.num_hidden_layers, "stored": stored, "version": 1}
    marker = path / "bench.json"
    if marker.is_file() and json.loads(marker.read_text()) == spec:
        return path
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    dtype = getattr(torch, stored)
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in Starcoder2(cfg).state_dict().items()}
    if cfg.tie_word_embeddings:
        shapes.pop("lm_head.weight")
    shards, size_now = [[]], 0
    for name, shape in shapes.items():
        n = math.prod(shape) * dtype.itemsize
        if shards[-1] and size_now + n > SHARD_BYTES:
            shards.append([])
            size_now = 0
        shards[-1].append(name)
        size_now += n
    weight_map = {}
    for i, names in enumerate(shards, 1):
        file = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        write_safetensors(path / file, {k: shapes[k] for k in names}, dtype, cfg.initializer_range)
        weight_map.update(dict.fromkeys(names, file))
    total = sum(math.prod(s) * dtype.itemsize for s in shapes.values())
    (path / INDEX).write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=1)
    )
    (path / CONFIG).write_text(json.dumps({**cfg.to_hf_dict(), "torch_dtype": stored}, indent=1))
    (path / GENERATION_CONFIG).write_text(json.dumps({"bos_token_id": 0, "eos_token_id": 0}))
    copy_tokenizer(tokenizer or FIXTURE_TOKENIZER, path)  # llama.cpp's converter needs one
    marker.write_text(json.dumps(spec))
    return path


def write_safetensors(file: Path, shapes: dict[str, tuple[int, ...]], dtype, std: float) -> None:  # noqa: ANN001
    """The safetensors format written directly: header first (offsets follow from the shapes), then
    each tensor made and written a block of rows at a time, so memory stays ~64 MB for any size."""
    import torch

    code = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}[dtype]
    header, offset = {}, 0
    for name, shape in shapes.items():
        n = math.prod(shape) * dtype.itemsize
        header[name] = {"dtype": code, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    header["__metadata__"] = {"format": "pt"}
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)  # data starts 8-byte aligned, as safetensors writes it
    with open(file, "wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw)
        for name, shape in shapes.items():
            g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
            if len(shape) == 1:  # LayerNorm weights near 1, biases near 0
                t = torch.randn(shape, generator=g) * 0.02 + (
                    1.0 if "norm" in name and "weight" in name else 0.0
                )
                f.write(t.to(dtype).view(torch.uint8).numpy().tobytes())
                continue
            rows = max(1, 2**24 // shape[1])
            for r in range(0, shape[0], rows):
                t = torch.randn(min(rows, shape[0] - r), shape[1], generator=g) * std
                f.write(t.to(dtype).view(torch.uint8).numpy().tobytes())


# ---- measurements (children) --------------------------------------------------------------------------
def status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def bandwidth(mib: int = 1024) -> dict:
    """Memory bandwidth from large tensors (default 1 GiB, past any last-level cache): a copy (bytes
    read + written / time, the issue's measure) and a read-only pass (an integer sum)."""
    import torch

    a = torch.ones(mib * 2**20, dtype=torch.uint8)
    b = torch.empty_like(a)
    copy = read = math.inf
    for _ in range(3):
        t = time.perf_counter()
        b.copy_(a)
        copy = min(copy, time.perf_counter() - t)
        t = time.perf_counter()
        a.view(torch.int64).sum()
        read = min(read, time.perf_counter() - t)
    return {"copy_gb_s": 2 * a.numel() / copy / 1e9, "read_gb_s": a.numel() / read / 1e9}


def prompt_ids(vocab: int, n: int = PROMPT_TOKENS) -> list[int]:
    import torch

    return torch.randint(1, vocab, (n,), generator=torch.Generator().manual_seed(7)).tolist()


def child_ours(path: str, mode: str, new_tokens: int, prompt: int) -> dict:
    """Load in `mode` (bf16/int8/int4), then one greedy generation: time to the first token, then
    the decode steps."""
    import torch

    from stackcoder.model import Starcoder2, get_size
    from stackcoder.model.hf import load_model

    with torch.device("meta"):  # import what a meta build imports before the baseline
        Starcoder2(get_size("debug"))
    base = status("VmRSS")
    t = time.perf_counter()
    model = load_model(path, dtype=torch.bfloat16, quantize=None if mode == "bf16" else mode)
    load_s = time.perf_counter() - t
    peak = status("VmHWM")
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    loaded = sum(v.numel() * v.element_size() for v in tensors.values())
    # every weight is read per token, except the input embeddings (one row) when lm_head is not them
    # (untied, or quantized: an int8 copy)
    shared = (
        type(model.lm_head) is torch.nn.Linear and model.lm_head.weight is model.model.embed_tokens.weight
    )
    per_token = loaded - (0 if shared else model.model.embed_tokens.weight.numel() * 2)
    return {
        "load_s": load_s,
        "peak_rss": peak,
        "base_rss": base,
        "loaded_bytes": loaded,
        "bytes_per_token": per_token,
        **decode(model, new_tokens, prompt),
    }


def decode(model, new_tokens: int, prompt: int) -> dict:  # noqa: ANN001
    """Greedy generation after the 1,046-token prompt: time to the first token, then tokens/s."""
    from stackcoder.model.generate import Decoding, SamplingParams

    ids = prompt_ids(model.config.vocab_size, prompt)
    times, tokens = [], []
    t = time.perf_counter()
    for step, _ in Decoding(model, [ids], SamplingParams(max_new_tokens=new_tokens)):
        now = time.perf_counter()
        times.append(now - t)
        tokens.append(int(step[0]))
        t = now
    return {"ttft_s": times[0], "decode_tokens_per_s": (len(times) - 1) / sum(times[1:]), "tokens": tokens}


def child_transformers(path: str, new_tokens: int, prompt: int) -> dict:
    import torch
    import transformers

    base = status("VmRSS")
    t = time.perf_counter()
    model = transformers.Starcoder2ForCausalLM.from_pretrained(path, dtype=torch.bfloat16).eval()
    load_s = time.perf_counter() - t
    peak = status("VmHWM")
    ids = torch.tensor([prompt_ids(model.config.vocab_size, prompt)])
    times, tokens = [], []
    with torch.inference_mode():
        t = time.perf_counter()
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
        for _ in range(new_tokens):
            tok = out.logits[:, -1].float().argmax(-1)
            now = time.perf_counter()
            times.append(now - t)
            tokens.append(int(tok))
            t = now
            if len(tokens) == new_tokens:
                break
            out = model(input_ids=tok[:, None], past_key_values=out.past_key_values, use_cache=True)
    return {
        "load_s": load_s,
        "peak_rss": peak,
        "base_rss": base,
        "ttft_s": times[0],
        "decode_tokens_per_s": (len(times) - 1) / sum(times[1:]),
        "tokens": tokens,
    }


def child_memory_check(path: str, mode: str) -> dict:
    """The 15B: bf16 must be refused with the options that fit; int8/int4 load and generate."""
    import torch

    from stackcoder.errors import UserError
    from stackcoder.model.generate import SamplingParams, generate
    from stackcoder.model.hf import load_model

    t = time.perf_counter()
    try:
        model = load_model(path, dtype=torch.bfloat16, quantize=None if mode == "bf16" else mode)
    except UserError as e:
        return {"refused": str(e)}
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    out = generate(model, [prompt_ids(model.config.vocab_size)[:64]], SamplingParams(max_new_tokens=8))
    return {
        "load_s": load_s,
        "peak_rss": status("VmHWM"),
        "generate_s": time.perf_counter() - t,
        "tokens": out[0],
    }


def child(argv: list[str]) -> None:
    import torch

    kind, threads, *rest = argv
    torch.set_num_threads(int(threads))
    if kind == "ours":
        result = child_ours(rest[0], rest[1], int(rest[2]), int(rest[3]))
    elif kind == "transformers":
        result = child_transformers(rest[0], int(rest[1]), int(rest[2]))
    elif kind == "memory":
        result = child_memory_check(rest[0], rest[1])
    else:
        result = bandwidth(int(rest[0]))
    print(json.dumps(result))


def run_child(*args: object) -> dict:
    # a fixed mmap threshold: glibc then returns large freed buffers at once, so RSS follows live tensors
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    out = subprocess.run(
        [sys.executable, __file__, "--child", *map(str, args)], capture_output=True, text=True, env=env
    )
    if out.returncode:
        return {
            "error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"
        }
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---- llama.cpp ------------------------------------------------------------------------------------------
CONVERT = """
import runpy, sys
from pathlib import Path
src = Path(sys.argv[1]); sys.path[:0] = [str(src), str(src / "gguf-py")]
import conversion.base as base
# our tokenizer is not one of llama.cpp's known pre-tokenizers: answer its check with StarCoder2's
base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "starcoder"
sys.argv = [str(src / "convert_hf_to_gguf.py"), *sys.argv[2:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def llama_cpp(
    bin_dir: Path, src: Path | None, checkpoint: Path, threads: int, new_tokens: int, prompt: int
) -> dict:
    """llama.cpp on the same checkpoint: converted to GGUF (BF16) with its own converter, quantized
    with llama-quantize to Q8_0 and Q4_K_M, measured with llama-bench (prompt processing of the same
    prompt length, then generation). Files are kept next to the checkpoint."""
    src = src or bin_dir.parents[1]
    if not (src / "convert_hf_to_gguf.py").is_file():
        return {"skipped": f"no convert_hf_to_gguf.py in {src} (pass --llama-cpp-src)"}
    out_dir = checkpoint / "gguf"
    out_dir.mkdir(exist_ok=True)
    ggufs = {"BF16": out_dir / "bf16.gguf", "Q8_0": out_dir / "q8_0.gguf", "Q4_K_M": out_dir / "q4_k_m.gguf"}
    if not ggufs["BF16"].is_file():
        r = subprocess.run(
            [
                sys.executable,
                "-c",
                CONVERT,
                str(src),
                str(checkpoint),
                "--outtype",
                "bf16",
                "--outfile",
                str(ggufs["BF16"]),
            ],
            capture_output=True,
            text=True,
        )
        if r.returncode:
            return {"skipped": f"convert_hf_to_gguf.py failed: {r.stderr.strip().splitlines()[-1]}"}
    results = {}
    for kind, file in ggufs.items():
        if not file.is_file():
            subprocess.run(
                [str(bin_dir / "llama-quantize"), str(ggufs["BF16"]), str(file), kind, str(threads)],
                capture_output=True,
                check=True,
            )
        r = subprocess.run(
            [
                str(bin_dir / "llama-bench"),
                "-m",
                str(file),
                "-p",
                str(prompt),
                "-n",
                str(new_tokens),
                "-t",
                str(threads),
                "-r",
                "2",
                "-o",
                "json",
            ],
            capture_output=True,
            text=True,
        )
        if r.returncode:
            results[kind] = {"error": f"llama-bench exit {r.returncode}: {r.stderr.strip()[-300:]}"}
            continue
        runs = json.loads(r.stdout)
        pp = next(x["avg_ts"] for x in runs if x["n_prompt"] > 0)
        tg = next(x["avg_ts"] for x in runs if x["n_gen"] > 0)
        results[kind] = {
            "file_bytes": file.stat().st_size,
            "ttft_s": prompt / pp,
            "decode_tokens_per_s": tg,
        }
    return results


# ---- quality (a model trained here) -------------------------------------------------------------------
def quality(model_dir: Path, dataset: Path, window: int = 1024) -> dict:
    """Perplexity on the held-out repositories' files and greedy next-token agreement with bf16, per
    mode: the quantization cost on real weights (random weights say nothing about it)."""
    import torch

    from stackcoder.eval.heldout import heldout_files
    from stackcoder.model.hf import load_model
    from stackcoder.tokenizer.files import encode, load_tokenizer

    tok = load_tokenizer(model_dir)
    files = [f["content"] for rows in heldout_files(dataset).values() for f in rows]
    chunks = []
    for text in files:
        ids = encode(tok, text)
        chunks += [ids[s : s + window + 1] for s in range(0, max(0, len(ids) - 1), window)]
    chunks = [torch.tensor([c]) for c in chunks if len(c) > 1]
    out, ref = {}, None
    for mode, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16), ("int8", None), ("int4", None)):
        model = load_model(model_dir, dtype=dtype, quantize=mode if mode in ("int8", "int4") else None)
        nll, n, preds = 0.0, 0, []
        with torch.inference_mode():
            for c in chunks:
                logits = model(c[:, :-1])[0][0].float()
                nll += float(torch.nn.functional.cross_entropy(logits, c[0, 1:], reduction="sum"))
                n += c.shape[1] - 1
                preds.append(logits.argmax(-1))
        preds = torch.cat(preds)
        if mode == "bf16":
            ref = preds
        out[mode] = {"perplexity": math.exp(nll / n), "tokens": n, "preds": preds}
    for r in out.values():
        r["agreement_with_bf16"] = float((r.pop("preds") == ref).float().mean())
    base = out["bf16"]["perplexity"]
    for r in out.values():
        r["perplexity_increase_pct"] = 100 * (r["perplexity"] / base - 1)
    return out


# ---- the server's prefix cache -------------------------------------------------------------------------
def prefix_cache_ttft(checkpoint: Path, threads: int) -> dict | None:
    """Time to the first token of a 1,024-token editor window after a one-line edit near its end,
    with the server's prefix KV cache (warm) and without (cold), for the same checkpoint in bf16:
    ``benchmarks/bench_prefix_cache.py`` in a child process, so its memory is its own."""
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"prefix-cache-{os.getpid()}.json"
    cmd = [sys.executable, str(Path(__file__).with_name("bench_prefix_cache.py")), "--model", str(checkpoint)]
    cmd += ["--dtype", "bfloat16", "--repeats", "3", "--json", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0 or not out.is_file():
        return {"error": (done.stderr or done.stdout).strip().splitlines()[-1:] or ["failed"]}
    result = json.loads(out.read_text())
    out.unlink()
    return result


# ---- the report ----------------------------------------------------------------------------------------
def gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


def report(r: dict) -> str:
    of = f" (of {r['full_layers']})" if r["layers"] != r["full_layers"] else ""
    bw = r["bandwidth"]
    lines = [
        f"**{r['size']}** shape, {r['layers']} layers{of}, stored {r['stored']} ({gb(r['checkpoint_bytes'])} "
        f"in {r['shards']} file(s)); {r['date']}, {r['machine']}, {r['threads']} threads, "
        f"torch {r['torch']}. Memory bandwidth in this run: copy {bw['copy_gb_s']:.1f} GB/s "
        f"(read + write), read {bw['read_gb_s']:.1f} GB/s. Prompt: {r['prompt_tokens']} tokens.",
        "",
    ]
    if r["runs"]:
        lines += [
            "| | load | peak RSS | loaded weights | first token after the prompt | decode, batch 1 "
            "| weight bytes/token | read rate (vs copy bw) |",
            "|---|---|---|---|---|---|---|---|",
        ]
    for name, m in r["runs"].items():
        if "error" in m:
            lines.append(f"| {name} | failed: {m['error']} |||||||")
            continue
        per_token = m.get("bytes_per_token")
        rate = per_token * m["decode_tokens_per_s"] / 1e9 if per_token else None
        loaded = gb(m["loaded_bytes"]) if "loaded_bytes" in m else ""
        read = f"{rate:.1f} GB/s ({100 * rate / bw['copy_gb_s']:.0f}%)" if rate else ""
        lines.append(
            f"| {name} | {m['load_s']:.1f} s | {gb(m['peak_rss'])} | {loaded} | {m['ttft_s']:.2f} s "
            f"| {m['decode_tokens_per_s']:.2f} tok/s | {gb(per_token) if per_token else ''} | {read} |"
        )
    bf16 = r["runs"].get("ours bf16", {})
    ratios = []
    for mode in ("int8", "int4"):
        m = r["runs"].get(f"ours {mode}", {})
        if "decode_tokens_per_s" in m and "decode_tokens_per_s" in bf16:
            ratios.append(f"{mode} decode {m['decode_tokens_per_s'] / bf16['decode_tokens_per_s']:.2f}x bf16")
    if ratios:
        lines += ["", "Speed-ups: " + ", ".join(ratios) + "."]
    if "transformers" in r["runs"] and "tokens" in r["runs"]["transformers"] and "tokens" in bf16:
        a, b = bf16["tokens"], r["runs"]["transformers"]["tokens"]
        same = next((i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y), len(a))
        agree = "identical" if same == len(a) else f"first {same} of {len(a)} equal"
        lines.append(f"Greedy bf16 vs transformers: {agree} tokens.")
    llama = r.get("llama_cpp")
    if llama:
        if "skipped" in llama:
            lines += ["", f"llama.cpp: skipped ({llama['skipped']})."]
        else:
            lines += [
                "",
                "| llama.cpp | file | first token after the prompt | decode, batch 1 "
                "| ours / llama.cpp decode |",
                "|---|---|---|---|---|",
            ]
            for kind, ours in (("BF16", "bf16"), ("Q8_0", "int8"), ("Q4_K_M", "int4")):
                m = llama.get(kind, {})
                if "error" in m:
                    lines.append(f"| {kind} | {m['error']} ||||")
                    continue
                o, theirs = (
                    r["runs"].get(f"ours {ours}", {}).get("decode_tokens_per_s"),
                    m["decode_tokens_per_s"],
                )
                ratio = f"{ours} {o / theirs:.2f}x" if o else ""
                lines.append(
                    f"| {kind} | {gb(m['file_bytes'])} | {m['ttft_s']:.2f} s | {theirs:.2f} tok/s | {ratio} |"
                )
    if r.get("memory_check"):
        lines += ["", "Memory check (this machine):"]
        for mode, m in r["memory_check"].items():
            if "refused" in m:
                lines.append(f"- {mode}: refused: {m['refused']}")
            elif "error" in m:
                lines.append(f"- {mode}: failed: {m['error']}")
            else:
                lines.append(
                    f"- {mode}: loaded in {m['load_s']:.0f} s, peak RSS {gb(m['peak_rss'])}, "
                    f"8 tokens in {m['generate_s']:.1f} s"
                )
    pc = r.get("prefix_cache")
    if pc and "error" in pc:
        lines += ["", f"Prefix-cache time to first token: failed: {pc['error']}"]
    elif pc:
        lines += ["", "Prefix-cache time to first token (1,024-token window, edit at its end, bf16):"]
        for order, t in pc["ttft"].items():
            if isinstance(t, dict) and "ratio" in t:
                lines.append(
                    f"- {order.upper()}: warm {t['warm_ttft_s']:.2f} s / cold {t['cold_ttft_s']:.2f} s "
                    f"(median of pairs {t['ratio']:.1%}; {t['prefilled_after_edit']} of {t['prompt_tokens']} "
                    f"tokens prefilled after the edit; goal ≤ {pc['goal_ratio']:.0%})"
                )
    if r["layers"] != r["full_layers"]:
        lines += [
            "",
            f"Only {r['layers']} layers: the weights may sit in the CPU's last-level cache, so decode "
            "rates above can exceed the memory bandwidth; run without --layers for the machine's figures.",
        ]
    return "\n".join(lines)


def quality_report(q: dict) -> str:
    lines = ["| mode | perplexity | vs bf16 | greedy next token = bf16's |", "|---|---|---|---|"]
    for mode, m in q.items():
        lines.append(
            f"| {mode} | {m['perplexity']:.3f} | {m['perplexity_increase_pct']:+.2f}% "
            f"| {100 * m['agreement_with_bf16']:.2f}% |"
        )
    return "\n".join(lines) + f"\n\n({next(iter(q.values()))['tokens']} held-out tokens.)"


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return 0
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="3b", help="a model size (3b, 7b, 15b; tiny/debug for smoke tests)")
    ap.add_argument("--layers", type=int, help="fewer layers than the release, for a quick run")
    ap.add_argument(
        "--stored", choices=["float32", "bfloat16"], help="checkpoint dtype (default: as released)"
    )
    ap.add_argument("--checkpoint-dir", type=Path, default=Path.home() / ".cache" / "stackcoder" / "released")
    ap.add_argument(
        "--tokenizer", type=Path, help="tokenizer files copied into the checkpoint (llama.cpp needs one)"
    )
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--new-tokens", type=int, default=32, help="tokens generated per decode measurement")
    ap.add_argument(
        "--prompt-tokens", type=int, default=PROMPT_TOKENS, help="default: %(default)s (the issue's)"
    )
    ap.add_argument("--bandwidth-mib", type=int, default=1024, help="tensor copied for the bandwidth")
    ap.add_argument("--modes", default="bf16,int8,int4")
    ap.add_argument(
        "--repeats", type=int, default=1, help="children per case, order alternating; fastest kept"
    )
    ap.add_argument("--no-transformers", action="store_true")
    ap.add_argument("--no-prefix-cache", action="store_true", help="skip the prefix-cache TTFT measurement")
    ap.add_argument(
        "--llama-cpp",
        type=Path,
        metavar="BIN_DIR",
        help="llama.cpp's built binaries (llama-bench, llama-quantize)",
    )
    ap.add_argument(
        "--llama-cpp-src",
        type=Path,
        metavar="DIR",
        help="llama.cpp's source (convert_hf_to_gguf.py, gguf-py)",
    )
    ap.add_argument("--quality-model", type=Path, help="a trained checkpoint for the quality figures")
    ap.add_argument("--quality-dataset", type=Path, help="its built dataset (held-out repositories)")
    ap.add_argument("--quality-only", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    results: dict = {}
    if args.quality_model and args.quality_dataset:
        torch.set_num_threads(args.threads)
        results["quality"] = quality(args.quality_model, args.quality_dataset)
        print(quality_report(results["quality"]) + "\n")
    if args.quality_only:
        return 0
    from stackcoder.model import get_size

    stored = args.stored or STORED.get(args.size, "float32")
    ckpt = make_checkpoint(args.size, args.layers, args.checkpoint_dir, stored, args.tokenizer)
    files = list(ckpt.glob("*.safetensors"))
    r = {
        "size": args.size,
        "layers": get_size(
            args.size, **({"num_hidden_layers": args.layers} if args.layers else {})
        ).num_hidden_layers,
        "full_layers": get_size(args.size).num_hidden_layers,
        "stored": stored,
        "checkpoint": str(ckpt),
        "checkpoint_bytes": sum(f.stat().st_size for f in files),
        "shards": len(files),
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB",
        "threads": args.threads,
        "torch": torch.__version__,
        "prompt_tokens": args.prompt_tokens,
        "bandwidth": run_child("bandwidth", args.threads, args.bandwidth_mib),
        "runs": {},
    }
    if args.size == "15b":  # the memory check: what fits on this machine
        r["memory_check"] = {m: run_child("memory", args.threads, ckpt, m) for m in ("bf16", "int8", "int4")}
    else:
        cases = [("ours", mode) for mode in args.modes.split(",")]
        cases += [] if args.no_transformers else [("transformers", None)]
        runs: dict[str, list[dict]] = {}
        for rep in range(args.repeats):  # alternate the order, keep each case's fastest decode
            for kind, mode in cases if rep % 2 == 0 else cases[::-1]:
                name = f"ours {mode}" if kind == "ours" else kind
                extra = [mode] if kind == "ours" else []
                runs.setdefault(name, []).append(
                    run_child(kind, args.threads, ckpt, *extra, args.new_tokens, args.prompt_tokens)
                )
        for name, rs in runs.items():
            ok = [x for x in rs if "error" not in x]
            r["runs"][name] = max(ok, key=lambda x: x["decode_tokens_per_s"]) if ok else rs[0]
        if args.llama_cpp:
            r["llama_cpp"] = llama_cpp(
                args.llama_cpp, args.llama_cpp_src, ckpt, args.threads, args.new_tokens, args.prompt_tokens
            )
        r["prefix_cache"] = None if args.no_prefix_cache else prefix_cache_ttft(ckpt, args.threads)
    r["bandwidth_after"] = run_child("bandwidth", args.threads, args.bandwidth_mib)
    results["released"] = r
    print(report(r))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
