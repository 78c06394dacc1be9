"""One run of `stackcoder tokenizer train` (recipe.md §2): train on the texts given, save the
tokenizer, and record how it was made in ``DIR/train_config.json``.

The texts come from the caller (``stackcoder.data.corpus.Corpus`` reads a built dataset): the
tokenizer package builds on nothing but ``errors``, so that what trains, loads and encodes
tokenizers never imports the dataset pipeline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tokenizers import Tokenizer

from stackcoder import __version__
from stackcoder.tokenizer.files import save_tokenizer
from stackcoder.tokenizer.train_bpe import train_tokenizer

TRAIN_CONFIG = "train_config.json"


class Texts(Protocol):
    """Training text that says where it came from and counts what was read (``data.corpus.Corpus``)."""

    inputs: list[tuple[Path, str | None]]  # (file, column; None: detected)
    n_texts: int
    n_bytes: int

    def __iter__(self) -> Iterator[str]: ...


@dataclass
class TrainRun:
    output: Path
    tokenizer: Tokenizer
    record: dict[str, Any]  # what train_config.json holds


def train_and_save(
    texts: Texts,
    output: str | Path,
    *,
    vocab_size: int,
    min_frequency: int,
    model_max_length: int,
    max_bytes: int | None = None,
    show_progress: bool = False,
) -> TrainRun:
    """Train on ``texts``, save to ``output`` (transformers' layout) with its run record."""
    start = time.perf_counter()
    tok = train_tokenizer(
        texts, vocab_size=vocab_size, min_frequency=min_frequency, show_progress=show_progress
    )
    seconds = time.perf_counter() - start
    out = save_tokenizer(tok, output, model_max_length=model_max_length)
    record = {
        "stackcoder": __version__,
        "data": [str(p) for p, _ in texts.inputs],
        "columns": sorted({c or "auto" for _, c in texts.inputs}),
        "max_bytes": max_bytes,
        "vocab_size": vocab_size,
        "min_frequency": min_frequency,
        "model_max_length": model_max_length,
        "trained_texts": texts.n_texts,
        "trained_bytes": texts.n_bytes,
        "final_vocab_size": tok.get_vocab_size(),
        "seconds": round(seconds, 2),
    }
    (out / TRAIN_CONFIG).write_text(json.dumps(record, indent=2) + "\n")
    return TrainRun(out, tok, record)
