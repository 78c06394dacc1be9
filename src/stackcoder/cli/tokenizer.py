"""`stackcoder tokenizer train|encode`: train StarCoder2's BPE tokenizer on a dataset, or use one."""

from __future__ import annotations

import argparse
import json
import re
import sys

from stackcoder.errors import UserError

_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)b?", re.IGNORECASE)


def _size(value: str) -> int:
    """A byte count: 5000000, 500K, 200M, 1.5G (powers of 1000)."""
    m = _SIZE_RE.fullmatch(value.strip())
    if m is None:
        raise argparse.ArgumentTypeError(f"not a size: {value!r} (e.g. 200M, 2G, 5000000)")
    scale = 1000 ** " kmgt".index(m.group(2).lower() or " ")
    return int(float(m.group(1)) * scale)


def add_parser(sub: argparse._SubParsersAction) -> None:
    # defaults repeat train_bpe's VOCAB_SIZE, MIN_FREQUENCY, files.MODEL_MAX_LENGTH (a test keeps them equal),
    # so that building the parser does not import tokenizers
    p = sub.add_parser("tokenizer", help="train the byte-level BPE tokenizer, or encode/decode with one")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    train = actions.add_parser(
        "train",
        help="train a tokenizer on a dataset built by `stackcoder build` (or parquet/jsonl files)",
        description="Train StarCoder2's tokenizer (byte-level BPE, digits split, 38 special tokens) and save "
        "it so that transformers.AutoTokenizer.from_pretrained(DIR) loads it. DATA is a dataset directory "
        "(documents/ when present, else files/) or parquet/jsonl files.",
    )
    train.add_argument("data", nargs="+", metavar="DATA", help="dataset directory, or .parquet/.jsonl files")
    train.add_argument("--output", "-o", required=True, metavar="DIR", help="where to save the tokenizer")
    train.add_argument("--vocab-size", type=int, default=49_152, metavar="N", help="default: %(default)s")
    train.add_argument(
        "--max-bytes", type=_size, metavar="N", help="train on a sample of this many bytes (e.g. 2G)"
    )
    train.add_argument(
        "--column", metavar="NAME", help="text column (default: text for documents, content for files)"
    )
    train.add_argument("--min-frequency", type=int, default=2, metavar="N", help="default: %(default)s")
    train.add_argument(
        "--model-max-length", type=int, default=16_384, metavar="N", help="for tokenizer_config.json"
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bars (default on a terminal)")
    train.set_defaults(run=run_train)

    enc = actions.add_parser(
        "encode",
        help="print the token ids of TEXT (or stdin); --decode turns ids back into text",
        description="Encode TEXT (stdin when absent) and print its ids on one line. Any local tokenizer.json "
        "works, the released StarCoder2 one included.",
    )
    enc.add_argument("text", nargs="?", metavar="TEXT", help="text to encode (default: read stdin)")
    enc.add_argument("--tokenizer", "-t", required=True, metavar="PATH", help="directory or tokenizer.json")
    mode = enc.add_mutually_exclusive_group()
    mode.add_argument("--tokens", action="store_true", help="print one token per line: id, token, text")
    mode.add_argument("--decode", action="store_true", help="input is ids (spaces or commas): print the text")
    enc.set_defaults(run=run_encode)


def run_train(args: argparse.Namespace) -> int:
    from stackcoder.data.corpus import Corpus
    from stackcoder.tokenizer.run import train_and_save

    progress = not args.no_progress and sys.stderr.isatty()
    corpus = Corpus(args.data, column=args.column, max_bytes=args.max_bytes, progress=progress)
    run = train_and_save(
        corpus,
        args.output,
        vocab_size=args.vocab_size,
        min_frequency=args.min_frequency,
        model_max_length=args.model_max_length,
        max_bytes=args.max_bytes,
        # tokenizers' own bars print a newline to stdout when done, even where they are hidden
        show_progress=progress and sys.stdout.isatty(),
    )
    size, seconds = run.tokenizer.get_vocab_size(), run.record["seconds"]
    print(
        f"trained on {corpus.n_texts:,} texts, {corpus.n_bytes / 1e6:,.1f} MB in {seconds:,.1f} s; "
        f"vocabulary {size:,}; saved to {run.output}"
    )
    if size < args.vocab_size:
        print(
            f"note: the data allowed only {size:,} of {args.vocab_size:,} tokens "
            f"(no more pairs seen {args.min_frequency}+ times); give more data for the full vocabulary",
            file=sys.stderr,
        )
    return 0


def _read_input(text: str | None) -> str:
    if text is not None:
        return text
    try:
        # bytes, not sys.stdin's text mode, which would turn "\r\n" into "\n"
        return sys.stdin.buffer.read().decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"stdin is not UTF-8 text ({e.reason} at byte {e.start})") from e


def _write_exact(text: str) -> None:
    out = getattr(sys.stdout, "buffer", None)
    if out is None:
        sys.stdout.write(text)
        return
    sys.stdout.flush()
    out.write(text.encode("utf-8"))
    out.flush()


def _parse_ids(text: str, vocab_size: int) -> list[int]:
    parts = [p for p in re.split(r"[\s,\[\]]+", text) if p]
    try:
        ids = [int(p) for p in parts]
    except ValueError as e:
        raise UserError(f"--decode expects token ids separated by spaces or commas ({e})") from e
    bad = [i for i in ids if not 0 <= i < vocab_size]
    if bad:
        raise UserError(f"token id {bad[0]} is out of range (vocabulary size {vocab_size})")
    return ids


def run_encode(args: argparse.Namespace) -> int:
    from stackcoder.tokenizer.files import decode, encode, load_tokenizer

    tok = load_tokenizer(args.tokenizer, require_special_tokens=False)
    text = _read_input(args.text)
    if args.decode:
        _write_exact(decode(tok, _parse_ids(text, tok.get_vocab_size(with_added_tokens=True))))
    elif args.tokens:
        for i in encode(tok, text):
            print(f"{i}\t{tok.id_to_token(i)}\t{json.dumps(decode(tok, [i]), ensure_ascii=False)}")
    else:
        print(" ".join(map(str, encode(tok, text))))
    return 0
