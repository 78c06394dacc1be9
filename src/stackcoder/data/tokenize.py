"""Token shards: the documents of a built dataset (``DIR/documents``) tokenized into memory-mappable
binary files with document boundaries, and split by repository into ``train`` and ``valid``.

The files are datatrove's tokenized format, which nanotron reads too (``DatatroveFolderDataset``):

    TOKENS/{train,valid}/<rank>_unshuffled.ds        token ids, little-endian uint16 (uint32 past 65,536 ids)
    TOKENS/{train,valid}/<rank>_unshuffled.ds.index  uint64 end offset (in tokens) of every document

written by datatrove's own ``DocumentTokenizer`` step, so the step runs on the same executors as the
build (local, Ray). Documents already end with ``<|endoftext|>`` (recipe.md §2), so none is added.
Fill-in-the-middle is not applied here: the loader applies it when batches are built, fresh each
epoch (``stackcoder.train.fim``, docs/training.md says why).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.readers import ParquetReader
from datatrove.pipeline.tokens import DocumentTokenizer

from stackcoder.data.executor import run_steps
from stackcoder.errors import UserError

SPLITS = ("train", "valid")
TOKENS_JSON = "tokens.json"


def _rank(seed: int, repo_name: str) -> bytes:
    return hashlib.blake2b(f"{seed}\0{repo_name}".encode(), digest_size=8).digest()


def held_out_repositories(documents: Path, fraction: float, seed: int = 0) -> set[str]:
    """The repositories kept out of training: the ``fraction`` (at least one, when there are two or
    more) whose keyed hash sorts first, so the choice depends only on names and seed."""
    names = sorted(
        {
            n
            for f in sorted(documents.glob("*.parquet"))
            for n in pq.read_table(f, columns=["repo_name"])[0].to_pylist()
        }
    )
    if fraction <= 0 or len(names) < 2:
        return set()
    k = min(len(names) - 1, max(1, round(fraction * len(names))))
    return set(sorted(names, key=lambda n: _rank(seed, n))[:k])


class RepositorySplit(PipelineStep):
    """Pass on the documents of one split: ``valid`` holds the held-out repositories, ``train`` the rest."""

    name = "🔀 Repository split"
    type = "🔢 - TOKENIZER"

    def __init__(self, split: str, held_out: set[str]):
        super().__init__()
        self.split = split
        self.held_out = frozenset(held_out)

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> Iterator:
        for doc in data:
            if (doc.metadata["repo_name"] in self.held_out) == (self.split == "valid"):
                self.stat_update(self.split)
                yield doc


@dataclass
class TokenizeConfig:
    dataset: str  # a directory built by `stackcoder build` (its documents/), or a documents folder
    tokenizer: str  # a directory holding tokenizer.json, or the file
    output: str | None = None  # default: DATASET/tokens
    valid_fraction: float = 0.05
    seed: int = 0
    workers: int = 1
    executor: str = "local"
    progress: bool = True
    overwrite: bool = False


def _documents_dir(dataset: Path) -> Path:
    docs = dataset / "documents" if (dataset / "documents").is_dir() else dataset
    if not any(docs.glob("*.parquet")):
        raise UserError(f"{dataset}: no documents (*.parquet); give a directory built by `stackcoder build`")
    return docs


def tokenize(config: TokenizeConfig) -> dict[str, Any]:
    """Tokenize a dataset's documents into ``OUTPUT/{train,valid}``; returns what ``tokens.json`` records."""
    from stackcoder.tokenizer.train_bpe import load_tokenizer

    if not 0 <= config.valid_fraction < 1:
        raise UserError("--valid-fraction must be in [0, 1)")
    docs = _documents_dir(Path(config.dataset))
    tok_file = Path(config.tokenizer)
    tok_file = tok_file / "tokenizer.json" if tok_file.is_dir() else tok_file
    tok = load_tokenizer(tok_file)
    out = Path(config.output) if config.output else Path(config.dataset) / "tokens"
    if out.exists() and any(out.iterdir()):
        if not config.overwrite:
            raise UserError(f"{out} is not empty; pass --overwrite to replace it")
        shutil.rmtree(out)
    held_out = held_out_repositories(docs, config.valid_fraction, config.seed)
    files = sorted(docs.glob("*.parquet"))
    vocab = tok.get_vocab_size(with_added_tokens=True)
    for split in SPLITS:
        steps = [
            ParquetReader(str(docs), glob_pattern="*.parquet", text_key="text"),
            RepositorySplit(split, held_out),
            DocumentTokenizer(
                str(out / split),
                tokenizer_name_or_path=str(tok_file),
                eos_token=None,  # every document already ends with <|endoftext|>
                shuffle_documents=False,  # the loader shuffles, per epoch
            ),
        ]
        run_steps(
            steps,
            tasks=len(files),
            workers=config.workers,
            logging_dir=out / "logs" / split,
            executor=config.executor,
            progress=config.progress,
            desc=f"tokenize {split}",
        )
    summary = {
        "dataset": str(Path(config.dataset).resolve()),
        "output": str(out),
        "tokenizer": str(tok_file.resolve()),
        "vocab_size": vocab,
        "token_bytes": 4 if vocab > 2**16 else 2,
        "format": "datatrove tokenized shards (.ds uint16/uint32 ids, .ds.index uint64 document ends)",
        "seed": config.seed,
        "valid_fraction": config.valid_fraction,
        "valid_repositories": sorted(held_out),
    }
    for split in SPLITS:
        ends = [_document_ends(f) for f in sorted((out / split).glob("*.ds"))]
        summary[split] = {
            "documents": sum(len(e) for e in ends),
            "tokens": sum(int(e[-1]) for e in ends if len(e)),
        }
    (out / TOKENS_JSON).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _document_ends(ds_file: Path) -> list[int]:
    import numpy as np

    index = ds_file.with_name(ds_file.name + ".index")
    return np.fromfile(index, dtype="<u8").tolist() if index.is_file() else []
