"""`stackcoder generate --model DIR [PROMPT]`: complete a prompt (or fill in the middle) with a local model.

Prints only the generated text, as it is generated. The prompt comes from stdin when absent. With
`--suffix`, the request is PSM fill-in-the-middle (recipe.md §2):
`<fim_prefix>PROMPT<fim_suffix>SUFFIX<fim_middle>`, and the output is the middle. Generation ends on
the same tokens as the server's (`special_tokens.STOP_TOKENS`).
"""

from __future__ import annotations

import argparse
import sys

from stackcoder.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="generate code from a prompt with a local StarCoder2 checkpoint",
        description=__doc__.split("\n", 2)[2],
    )
    p.add_argument("--model", required=True, metavar="DIR", help="Hugging Face-layout checkpoint directory")
    p.add_argument("prompt", nargs="?", help="the prompt (default: read stdin)")
    p.add_argument("--suffix", metavar="TEXT", help="text after the cursor: a fill-in-the-middle request")
    # defaults repeat SamplingParams' (a test keeps them equal): building the parser imports no torch
    p.add_argument("--max-new-tokens", type=int, default=128, metavar="N")
    p.add_argument("--temperature", type=float, default=0.0, help="0 (default) = greedy")
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=0, help="0 (default) = off")
    p.add_argument(
        "--stop", action="append", default=[], metavar="TEXT", help="stop before this text (repeatable)"
    )
    p.add_argument("--seed", type=int, help="for reproducible sampling")
    p.add_argument(
        "--dtype", choices=["float32", "bfloat16", "float16"], help="compute dtype (default: as stored)"
    )
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument(
        "--quantize",
        choices=["int8", "int4"],
        help="weight-only quantization of the blocks' linears while loading (compute in bfloat16): "
        "int8 ~half and int4 ~a quarter of the bf16 memory, faster decoding on CPUs (docs/model.md)",
    )
    p.add_argument(
        "--adapter",
        metavar="DIR",
        help="a LoRA adapter for --model in PEFT's format (`stackcoder finetune`'s RUN/adapter)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from stackcoder.model.generate import SamplingParams, stream
    from stackcoder.model.hf import DTYPES, load_config, load_model
    from stackcoder.tokenizer.files import encode, load_tokenizer, stop_token_ids
    from stackcoder.tokenizer.prompts import fim_ids

    prompt = args.prompt if args.prompt is not None else sys.stdin.read()
    params = SamplingParams(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        stop=args.stop,
        seed=args.seed,
    )
    load_config(args.model)  # a clear error for a wrong directory before anything else
    tokenizer = load_tokenizer(args.model)
    model = load_model(
        args.model, dtype=DTYPES.get(args.dtype), device=torch.device(args.device), quantize=args.quantize
    )
    if args.adapter:
        from stackcoder.model.lora import apply_adapter

        model = apply_adapter(model, args.adapter)
    ids = fim_ids(tokenizer, prompt, args.suffix) if args.suffix is not None else encode(tokenizer, prompt)
    if not ids:
        raise UserError("the prompt is empty")
    if len(ids) + params.max_new_tokens > model.config.max_position_embeddings:
        print(
            f"stackcoder generate: warning: {len(ids)} prompt + {params.max_new_tokens} new tokens exceed "
            f"the model's {model.config.max_position_embeddings} positions",
            file=sys.stderr,
        )
    for piece in stream(model, tokenizer, ids, params, stop_token_ids(tokenizer)):
        sys.stdout.write(piece.text)
        sys.stdout.flush()
    if sys.stdout.isatty():
        sys.stdout.write("\n")
    return 0
