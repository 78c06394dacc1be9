"""`stackcoder serve --model DIR`: completions for editors (TGI, OpenAI, llama.cpp shapes), a playground."""

from __future__ import annotations

import argparse

from stackcoder.serve.config import ServeConfig


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a checkpoint to editors: TGI /generate, OpenAI /v1/completions, llama.cpp /infill",
        description=(
            "Serve a Hugging Face-layout StarCoder2 checkpoint (ours or a released one) on one port: TGI's "
            "/generate and /generate_stream (what llm-vscode / llm-ls post to), OpenAI's /v1/completions "
            "with suffix (server-side FIM), llama.cpp's /infill with other files as repository context, and "
            "a fill-in-the-middle playground at /. Concurrent requests are batched on the model's KV cache. "
            "Schema: /openapi.json. docs/serve.md has editor configurations."
        ),
    )
    p.add_argument(
        "--model",
        "-m",
        required=True,
        metavar="DIR",
        help="checkpoint directory (config.json, weights, tokenizer)",
    )
    p.add_argument("--host", default=ServeConfig.host, help="default: %(default)s (loopback only)")
    p.add_argument("--port", type=int, default=ServeConfig.port, help="default: %(default)s")
    p.add_argument(
        "--api-key", metavar="KEY", help="require `Authorization: Bearer KEY` (or set STACKCODER_API_KEY)"
    )
    p.add_argument(
        "--cors", action="append", default=[], metavar="ORIGIN", help="allow this browser origin (repeatable)"
    )
    p.add_argument("--device", default=ServeConfig.device, help="auto (default), cpu, cuda")
    p.add_argument("--dtype", default=ServeConfig.dtype, choices=["auto", "float32", "bfloat16", "float16"])
    p.add_argument(
        "--quantize",
        choices=["int8", "int4"],
        help="weight-only int8/int4 linears, quantized while loading (bfloat16 compute; docs/model.md)",
    )
    p.add_argument(
        "--adapter",
        metavar="DIR",
        help="a LoRA adapter for --model in PEFT's format (`stackcoder finetune`'s RUN/adapter); "
        "/v1/models then names it: MODEL+ADAPTER",
    )
    p.add_argument(
        "--max-batch",
        type=int,
        default=ServeConfig.max_batch,
        metavar="N",
        help="sequences decoded together; default: %(default)s",
    )
    p.add_argument(
        "--max-queue",
        type=int,
        default=ServeConfig.max_queue,
        metavar="N",
        help="waiting requests before 503; default: %(default)s",
    )
    p.add_argument(
        "--max-new-tokens",
        type=int,
        default=ServeConfig.max_new_tokens,
        metavar="N",
        help="cap per request; default: %(default)s",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=ServeConfig.timeout_s,
        metavar="S",
        help="per-request limit; default: %(default)s",
    )
    p.add_argument(
        "--prefix-cache-mb",
        type=int,
        default=ServeConfig.prefix_cache_mb,
        metavar="MB",
        help="memory for the keys and values of recent prompts: a prompt that starts like a cached one "
        "(an editor resending its window) prefills only the rest; 0 turns it off; default: %(default)s",
    )
    p.add_argument(
        "--fim-order",
        default=ServeConfig.fim_order,
        choices=["spm", "psm"],
        help="order of the FIM prompts the server builds (OpenAI suffix, /infill): spm (suffix first: "
        "an edit at the cursor keeps the rest cached) or psm; default: %(default)s",
    )
    p.add_argument(
        "--index",
        metavar="INDEX_DIR",
        help="a `stackcoder index build` directory: enables /overlap, /search, attribution of completions "
        "and the playground's search box",
    )
    p.add_argument(
        "--index-max-chance",
        type=float,
        metavar="P",
        help="/overlap and attribution report a span the full-text index does not confirm only when its "
        "chance probability is at most P (1: every hit of the Bloom filters); default: 1e-6",
    )
    p.add_argument(
        "--model-id", metavar="NAME", help="the name /v1/models reports (default: the directory's name)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from stackcoder.serve.app import create_app

    kwargs = {} if args.api_key is None else {"api_key": args.api_key}
    config = ServeConfig(
        model=args.model,
        model_id=args.model_id,
        host=args.host,
        port=args.port,
        cors_origins=args.cors,
        device=args.device,
        dtype=args.dtype,
        quantize=args.quantize,
        adapter=args.adapter,
        max_batch=args.max_batch,
        max_queue=args.max_queue,
        max_new_tokens=args.max_new_tokens,
        timeout_s=args.timeout,
        prefix_cache_mb=args.prefix_cache_mb,
        fim_order=args.fim_order,
        index=args.index,
        index_max_chance=args.index_max_chance,
        **kwargs,
    )
    app = create_app(config)
    where = f"http://{args.host}:{args.port}/"
    print(f"serving {app.state.service.model_id} on {where} (playground), API schema at {where}openapi.json")
    if app.state.index is not None:
        print(f"dataset index {args.index}: POST {where}overlap, GET {where}search?q=")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
