"""The completion server under load, ours (continuous batching) vs a naive server, in the same run.

The naive server is the obvious one, written here: FastAPI with the same TGI route (``POST /generate``)
calling ``transformers.Starcoder2ForCausalLM.generate`` once per request, each request on its own
thread. Both serve the same checkpoint (by default a small random StarCoder2 made here, with the
fixture tokenizer's FIM tokens) with all CPU threads; both run, loaded one at a time, alternating
which goes first at each C. A load generator in another process runs C concurrent clients
(C = 1, 4, 16), each sending llm-ls-style fill-in-the-middle requests cut from real code
(``<fim_prefix>…<fim_suffix>…<fim_middle>``, greedy, 60 new tokens) back to back for ``--duration``
seconds. Generated tokens are counted the same way for both servers (TGI's ``details.generated_tokens``,
which both return, else ``generated_text`` re-tokenized), so tokens/s is the fair measure even where a
generation ends early; the random model is made so that none does. Goal (the serving issue): ours
>= 3x the naive throughput at 16 clients.

    python benchmarks/bench_serve.py                      # tiny model, 20 s per server and C
    python benchmarks/bench_serve.py --repeats 3          # best of 3 rounds: steadier on a busy machine
    python benchmarks/bench_serve.py --smoke              # debug model, C = 1, 2, a few requests
    python benchmarks/bench_serve.py --model DIR --clients 1 8 --duration 60 --json out.json

Prints a Markdown table for docs/benchmarks.md; ``--json FILE`` writes the numbers. Internal entry
points (run by the script itself): ``bench_serve.py naive-server --model DIR --port P`` and
``bench_serve.py load ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))

FIXTURE_TOKENIZER = ROOT / "tests" / "fixtures" / "model"
FIM = ("<fim_prefix>", "<fim_suffix>", "<fim_middle>")
GOAL_CLIENTS, GOAL_RATIO = 16, 3.0


# --- the naive server ---------------------------------------------------------------------------


def naive_server(argv: list[str]) -> None:
    """transformers' ``generate`` once per request; FastAPI runs each (plain ``def``) on its own thread."""
    ap = argparse.ArgumentParser(prog="bench_serve.py naive-server")
    ap.add_argument("--model", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args(argv)

    import torch
    import transformers
    import uvicorn
    from fastapi import FastAPI
    from pydantic import BaseModel, Field
    from tokenizers import Tokenizer

    model = transformers.Starcoder2ForCausalLM.from_pretrained(args.model).eval()
    tokenizer = Tokenizer.from_file(str(Path(args.model) / "tokenizer.json"))
    eos = model.generation_config.eos_token_id
    eos = eos if eos is not None else model.config.eos_token_id

    class Parameters(BaseModel):
        max_new_tokens: int = 20
        temperature: float | None = None
        top_p: float | None = None
        return_full_text: bool = False
        details: bool = False

    class Request(BaseModel):
        inputs: str
        parameters: Parameters = Field(default_factory=Parameters)

    app = FastAPI(title="naive transformers server")

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    def generate(req: Request) -> dict:
        p = req.parameters
        ids = torch.tensor([tokenizer.encode(req.inputs, add_special_tokens=False).ids])
        sample = bool(p.temperature) and p.temperature > 0
        kwargs = {"do_sample": True, "temperature": p.temperature, "top_p": p.top_p or 1.0} if sample else {}
        with torch.inference_mode():
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=p.max_new_tokens,
                do_sample=sample,
                eos_token_id=eos,
                pad_token_id=eos if eos is not None else 0,
                **kwargs,
            )
        new = out[0, ids.shape[1] :].tolist()
        text = tokenizer.decode(new, skip_special_tokens=True)
        body = {"generated_text": (req.inputs + text) if p.return_full_text else text}
        if p.details:
            finish = "eos_token" if new and new[-1] == eos and len(new) < p.max_new_tokens else "length"
            body["details"] = {"finish_reason": finish, "generated_tokens": len(new)}
        return body

    # the annotations are strings (postponed evaluation) naming local classes: give FastAPI the classes
    generate.__annotations__["req"] = Request
    app.post("/generate")(generate)

    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


# --- the load generator (its own process) -------------------------------------------------------


def load(argv: list[str]) -> None:
    """C clients on threads, each sending its next request when the last one is answered; prints JSON."""
    ap = argparse.ArgumentParser(prog="bench_serve.py load")
    ap.add_argument("--url", required=True)
    ap.add_argument("--prompts", required=True, help="a JSON list of prompt strings")
    ap.add_argument("--clients", type=int, required=True)
    ap.add_argument("--duration", type=float, default=0.0, help="seconds during which clients start requests")
    ap.add_argument("--requests", type=int, default=1, help="at least this many requests per client")
    ap.add_argument("--max-new-tokens", type=int, default=60)
    ap.add_argument("--offset", type=int, default=0, help="first prompt index")
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args(argv)

    import httpx

    prompts = json.loads(Path(args.prompts).read_text())
    C = args.clients
    records: list[list[dict]] = [[] for _ in range(C)]
    barrier = threading.Barrier(C + 1)
    t0 = [0.0]

    def client(c: int) -> None:
        with httpx.Client(base_url=args.url, timeout=args.timeout) as http:
            barrier.wait()
            j = 0
            while j < args.requests or time.perf_counter() - t0[0] < args.duration:
                key = (args.offset + c + j * C) % len(prompts)
                body = {
                    "inputs": prompts[key],
                    "parameters": {
                        "max_new_tokens": args.max_new_tokens,
                        "temperature": 0.0,
                        "return_full_text": False,
                        "details": True,
                    },
                }
                start = time.perf_counter()
                rec: dict = {"key": key, "start": start - t0[0]}
                try:
                    r = http.post("/generate", json=body)
                    rec["status"] = r.status_code
                    if r.status_code == 200:
                        data = r.json()
                        data = data[0] if isinstance(data, list) else data
                        rec["text"] = data["generated_text"]
                        details = data.get("details") or {}
                        if "generated_tokens" in details:
                            rec["server_tokens"] = details["generated_tokens"]
                    else:
                        rec["error"] = r.text[:300]
                except Exception as e:  # a refused or dropped connection is a result too
                    rec["status"], rec["error"] = 0, f"{type(e).__name__}: {e}"[:300]
                rec["latency"] = time.perf_counter() - start
                records[c].append(rec)
                j += 1

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(C)]
    for t in threads:
        t.start()
    t0[0] = time.perf_counter()
    barrier.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0[0]
    print(json.dumps({"wall_s": wall, "requests": [r for rs in records for r in rs]}))


# --- the driver ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_checkpoint(size: str, out: Path) -> dict:
    """Seeded random weights with spread-out logits (so greedy text depends on the prompt) and an
    untied lm_head whose special-token rows are zero: generations never end early on ``<|endoftext|>``
    nor emit special tokens that decoding would drop, so both servers do the full work."""
    import torch
    from tokenizers import Tokenizer

    from stackcoder.model import Starcoder2, get_size
    from stackcoder.model.hf import save_model

    tok = Tokenizer.from_file(str(FIXTURE_TOKENIZER / "tokenizer.json"))
    cfg = get_size(
        size, vocab_size=tok.get_vocab_size(), max_position_embeddings=2048, tie_word_embeddings=False
    )
    torch.manual_seed(0)
    model = Starcoder2(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0, 1.0 if "embed" in name else 1.5 / p.shape[-1] ** 0.5)
        special = [i for i, t in tok.get_added_tokens_decoder().items() if t.special]
        model.lm_head.weight[special] = 0.0
    save_model(model, out, tokenizer_dir=FIXTURE_TOKENIZER)
    return {"size": size, "params_m": round(cfg.num_parameters() / 1e6, 2), "random": True}


def make_prompts(n: int, prefix_chars: int, suffix_chars: int, seed: int = 0) -> list[str]:
    """FIM prompts as llm-ls sends them: a cursor in a real source file (this repo's ``src/``), the
    text before it and after it."""
    rng = random.Random(seed)
    files = sorted(p for p in SRC.rglob("*.py") if p.stat().st_size > 4 * (prefix_chars + suffix_chars))
    texts = [f.read_text(encoding="utf-8") for f in files]
    prompts = []
    for i in range(n):
        text = texts[i % len(texts)]
        cursor = rng.randrange(prefix_chars, len(text) - suffix_chars)
        cursor = text.rfind("\n", 0, cursor) + 1 + rng.randrange(0, 12)  # mid-line, like a user typing
        prefix, suffix = text[cursor - prefix_chars : cursor], text[cursor : cursor + suffix_chars]
        prompts.append(FIM[0] + prefix + FIM[1] + suffix + FIM[2])
    return prompts


class Server:
    """A server subprocess with its log in a file; ``wait_ready`` polls ``GET /health``."""

    def __init__(self, name: str, cmd: list[str], port: int, env: dict, log: Path):
        self.name, self.port, self.log_path = name, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)

    def wait_ready(self, timeout: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} server exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{self.name} server not healthy after {timeout:.0f} s:\n{self.tail()}")

    def tail(self, chars: int = 3000) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def ours_launch(mode: str) -> str:
    """How to start our server: the ``serve`` verb when the CLI has it, else ``create_app`` directly."""
    if mode != "auto":
        return mode
    try:
        from stackcoder.cli import VERBS

        if "serve" in VERBS and (SRC / "stackcoder" / "cli" / "serve.py").exists():
            return "cli"
    except ImportError:
        pass
    return "app"


LAUNCHER = """\
import sys
sys.path.insert(0, {src!r})
import uvicorn
from stackcoder.serve.app import create_app
from stackcoder.serve.config import ServeConfig
cfg = ServeConfig(model={model!r}, port={port}, max_batch={max_batch})
uvicorn.run(create_app(cfg), host="127.0.0.1", port={port}, log_level="warning")
"""


def start_server(name: str, launch: str, model: Path, work: Path, threads: int, max_batch: int) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
    }
    if launch == "naive":
        cmd = [sys.executable, __file__, "naive-server", "--model", str(model), "--port", str(port)]
    elif launch == "cli":
        cmd = [sys.executable, "-m", "stackcoder", "serve", "--model", str(model), "--port", str(port)]
        cmd += ["--host", "127.0.0.1", "--max-batch", str(max_batch)]
    elif launch == "app":
        script = work / f"launch_{name}.py"
        script.write_text(LAUNCHER.format(src=str(SRC), model=str(model), port=port, max_batch=max_batch))
        cmd = [sys.executable, str(script)]
    else:
        raise ValueError(launch)
    return Server(name, cmd, port, env, work / f"{name}.log")


def run_load(
    url: str, prompts: Path, clients: int, args, offset: int = 0, requests: int | None = None
) -> dict:
    cmd = [sys.executable, __file__, "load", "--url", url, "--prompts", str(prompts)]
    cmd += ["--clients", str(clients), "--max-new-tokens", str(args.max_new_tokens), "--offset", str(offset)]
    cmd += ["--duration", str(0 if requests else args.duration), "--requests", str(requests or args.requests)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(SRC)}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"load generator failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def percentile(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def count_tokens(raws: list[dict], tokenizer) -> str:
    """Set ``tokens`` on every answered request, the same way for all: the servers' own count
    (TGI ``details.generated_tokens``) when every answer has it, else ``generated_text`` re-tokenized
    (which over-counts where generated byte-level pieces decode to replacement characters)."""
    ok = [r for raw in raws for r in raw["requests"] if r.get("status") == 200]
    details = all("server_tokens" in r for r in ok)
    for r in ok:
        n = r["server_tokens"] if details else len(tokenizer.encode(r["text"], add_special_tokens=False).ids)
        r["tokens"] = n
    return "details.generated_tokens" if details else "re-tokenized generated_text"


def summarize(raw: dict) -> dict:
    reqs = raw["requests"]
    ok = [r for r in reqs if r.get("status") == 200]
    tokens = sum(r["tokens"] for r in ok)
    lat = [r["latency"] for r in ok]
    errors = [r for r in reqs if r.get("status") != 200]
    return {
        "requests": len(ok),
        "errors": len(errors),
        "error_sample": errors[0].get("error") if errors else None,
        "wall_s": round(raw["wall_s"], 3),
        "p50_s": round(percentile(lat, 0.5), 4),
        "p95_s": round(percentile(lat, 0.95), 4),
        "generated_tokens": tokens,
        "tokens_per_request": round(tokens / len(ok), 1) if ok else 0.0,
        "tokens_per_s": round(tokens / raw["wall_s"], 2),
        "requests_per_s": round(len(ok) / raw["wall_s"], 3),
    }


def best(rounds: list[dict]) -> dict:
    """The round with the most tokens/s (the least disturbed by other work), with every round's."""
    summaries = [summarize(raw) for raw in rounds]
    top = max(summaries, key=lambda s: s["tokens_per_s"])
    return {**top, "rounds_tokens_per_s": [s["tokens_per_s"] for s in summaries]}


def bench_servers(launches: dict[str, str], model: Path, work: Path, prompts: Path, args) -> tuple:
    """Start every server, warm each up, then run the load at each C on one server after the other,
    alternating which goes first, so that a slower stretch of a shared machine does not land on one
    server only (an idle server sleeps). The load generator's raw records per server and C."""
    servers: dict[str, Server] = {}
    raws: dict[str, dict] = {name: {str(c): [] for c in args.clients} for name in launches}
    ready: dict[str, float] = {}
    try:
        t = time.perf_counter()
        for name, how in launches.items():
            print(f"bench_serve: starting the {name} server ({how})", file=sys.stderr, flush=True)
            servers[name] = start_server(name, how, model, work, args.threads, args.max_batch)
        for name, server in servers.items():
            server.wait_ready(args.startup_timeout)
            ready[name] = round(time.perf_counter() - t, 1)
            # warm-up, not counted: first-call costs (allocators, kernels, lazy imports)
            run_load(server.url, prompts, 2, args, offset=10_000, requests=1)
        rounds = [(k, j, c) for k in range(args.repeats) for j, c in enumerate(args.clients)]
        for k, j, c in rounds:  # who goes first alternates from one C to the next and between rounds
            for name in list(servers)[:: 1 if (k + j) % 2 == 0 else -1]:
                raw = run_load(servers[name].url, prompts, c, args)
                raws[name][str(c)].append(raw)
                ok = [r for r in raw["requests"] if r.get("status") == 200]
                errors = len(raw["requests"]) - len(ok)
                print(
                    f"  {name}, {c} clients: {len(ok)} requests in {raw['wall_s']:.1f} s"
                    + (f", {errors} errors" if errors else ""),
                    file=sys.stderr,
                    flush=True,
                )
                if servers[name].proc.poll() is not None:
                    raise RuntimeError(f"the {name} server died during the run")
    except Exception:
        for name, server in servers.items():
            print(f"bench_serve: {name} server log tail:\n{server.tail()}", file=sys.stderr)
        raise
    finally:
        for server in servers.values():
            server.stop()
    return raws, ready


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "naive-server":
        naive_server(sys.argv[2:])
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "load":
        load(sys.argv[2:])
        return 0

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="a StarCoder2 checkpoint (default: a random one made here)")
    ap.add_argument("--size", default="tiny", help="size of the random model (default: %(default)s)")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16], metavar="C")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of load per server and C")
    ap.add_argument("--requests", type=int, default=1, help="at least this many requests per client")
    ap.add_argument(
        "--repeats", type=int, default=1, help="rounds of every C; the table reports each one's best round"
    )
    ap.add_argument("--max-new-tokens", type=int, default=60)
    ap.add_argument("--prefix-chars", type=int, default=480, help="code before the cursor")
    ap.add_argument("--suffix-chars", type=int, default=160, help="code after the cursor")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="OMP threads of each server")
    ap.add_argument("--max-batch", type=int, default=16, help="our server's --max-batch")
    ap.add_argument(
        "--ours",
        choices=["auto", "cli", "app", "naive"],
        default="auto",
        help="how to start our server: auto = `stackcoder serve` when the verb exists, else create_app; "
        "naive = the naive server on both sides (checks this script)",
    )
    ap.add_argument("--startup-timeout", type=float, default=300.0)
    ap.add_argument("--smoke", action="store_true", help="debug model, C = 1, 2, a few requests: seconds")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args()
    if args.smoke:
        args.size, args.clients, args.duration, args.requests = "debug", [1, 2], 0.0, 2
        args.max_new_tokens, args.prefix_chars, args.suffix_chars = 16, 150, 50

    from tokenizers import Tokenizer

    launch = ours_launch(args.ours)
    with tempfile.TemporaryDirectory(prefix="stackcoder-bench-serve-") as tmp:
        work = Path(tmp)
        if args.model:
            model_dir, model_info = args.model, {"path": str(args.model), "random": False}
        else:
            model_dir = work / "model"
            model_info = make_checkpoint(args.size, model_dir)
        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        prompt_list = make_prompts(64, args.prefix_chars, args.suffix_chars)
        prompts = work / "prompts.json"
        prompts.write_text(json.dumps(prompt_list))
        prompt_tokens = sum(len(tokenizer.encode(p, add_special_tokens=False).ids) for p in prompt_list)

        results: dict = {
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
            "server_threads": args.threads,
            "model": model_info,
            "ours_launch": launch,
            "max_new_tokens": args.max_new_tokens,
            "prompt_tokens_mean": round(prompt_tokens / len(prompt_list), 1),
            "clients": args.clients,
            "duration_s": args.duration,
            "servers": {},
        }
        launches = {"ours": launch, "naive": "naive"}
        raws, results["ready_after_s"] = bench_servers(launches, model_dir, work, prompts, args)
        every = [raw for rs in raws.values() for rounds in rs.values() for raw in rounds]
        results["token_count"] = count_tokens(every, tokenizer)
        results["servers"] = {n: {c: best(rounds) for c, rounds in rs.items()} for n, rs in raws.items()}
        texts = {
            n: {
                r["key"]: r["text"]
                for rounds in rs.values()
                for raw in rounds
                for r in raw["requests"]
                if r.get("status") == 200
            }
            for n, rs in raws.items()
        }

    ours, naive = results["servers"]["ours"], results["servers"]["naive"]
    ratio = {
        c: round(ours[c]["tokens_per_s"] / naive[c]["tokens_per_s"], 2) if naive[c]["tokens_per_s"] else None
        for c in ours
    }
    results["ratio"] = ratio
    common = sorted(set(texts["ours"]) & set(texts["naive"]))
    same = sum(texts["ours"][k] == texts["naive"][k] for k in common)
    results["greedy_same_text"] = {"prompts": len(common), "same": same}
    goal = str(GOAL_CLIENTS)
    results["goal"] = {
        "clients": GOAL_CLIENTS,
        "ratio": GOAL_RATIO,
        "met": (ratio.get(goal) or 0) >= GOAL_RATIO if goal in ratio else None,
    }

    m = model_info
    what = f"random {m['size']} ({m['params_m']}M params)" if m.get("random") else m["path"]
    print(
        f"{results['machine']}, {args.threads} threads per server; model {what}; FIM prompts of "
        f"{results['prompt_tokens_mean']:.0f} tokens on average, greedy, {args.max_new_tokens} new tokens; "
        + (
            f"{args.duration:.0f} s per server and C"
            if args.duration
            else f"{args.requests} requests per client"
        )
        + (f", best of {args.repeats} rounds" if args.repeats > 1 else "")
        + f"; our server started via {launch}; tokens counted from {results['token_count']}\n"
    )
    print(
        "| clients | server | requests | errors | p50 latency s | p95 latency s | tokens/s | ours / naive |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for c in ours:
        for name, r in (("ours", ours[c]), ("naive", naive[c])):
            rt = f"**{ratio[c]:.2f}x**" if name == "ours" and ratio[c] is not None else ""
            print(
                f"| {c} | {name} | {r['requests']} | {r['errors']} | {r['p50_s']:.2f} | {r['p95_s']:.2f} "
                f"| {r['tokens_per_s']:.1f} | {rt} |"
            )
    last = str(args.clients[-1])
    print(
        f"\nGreedy outputs identical on {same} of {len(common)} prompts both servers answered; "
        f"tokens per request at {last} clients: ours {ours[last]['tokens_per_request']}, "
        f"naive {naive[last]['tokens_per_request']}."
    )
    if results["goal"]["met"] is None:
        print(
            f"Goal (>= {GOAL_RATIO:.0f}x naive at {GOAL_CLIENTS} clients): not measured "
            f"(no {goal}-client run)."
        )
    else:
        verdict = "met" if results["goal"]["met"] else "NOT met"
        print(f"Goal (>= {GOAL_RATIO:.0f}x naive at {GOAL_CLIENTS} clients): {verdict} ({ratio[goal]:.2f}x).")
    for name, srv in results["servers"].items():
        for c, r in srv.items():
            if r["errors"]:
                print(f"warning: {name} at {c} clients: {r['errors']} errors, e.g. {r['error_sample']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    silent = [
        f"{n} at {c} clients"
        for n, srv in results["servers"].items()
        for c, r in srv.items()
        if not r["requests"]
    ]
    if silent:
        print(f"bench_serve: no request answered: {', '.join(silent)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
