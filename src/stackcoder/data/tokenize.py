"""Token shards: the documents of a built dataset (``DIR/documents``), and of its other sources
(``DIR/jupyter_scripts``, ``DIR/issues``, ...: the mix, ``data/mix.py``), tokenized into
memory-mappable binary files with document boundaries, and split by repository into ``train`` and
``valid``.

The files are datatrove's tokenized format, which nanotron reads too (``DatatroveFolderDataset``):

    TOKENS/{train,valid}/<rank>_unshuffled.ds        token ids, little-endian uint16 (uint32 past 65,536 ids)
    TOKENS/{train,valid}/<rank>_unshuffled.ds.index  uint64 end offset (in tokens) of every document

written by datatrove's own ``DocumentTokenizer`` step, so the step runs on the same executors as the
build (local, Ray, Slurm). Documents already end with ``<|endoftext|>`` (recipe.md §2), so none is added.
Every source's text is already in its training format (``<jupyter_script>…``, ``<issue_start>…``):
the tokenizer maps those special-token strings to their ids, as it does ``<repo_name>`` and
``<file_sep>`` in documents. A mix of several sources has one folder per source,
``TOKENS/{train,valid}/<source>/``; a dataset with documents alone keeps the layout above.
Fill-in-the-middle is not applied here: the loader applies it when batches are built, fresh each
epoch (``stackcoder.train.fim``, docs/training.md says why).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.readers import ParquetReader
from datatrove.pipeline.tokens import DocumentTokenizer

from stackcoder.data.card import update_card_mix
from stackcoder.data.executor import Pass, run_passes
from stackcoder.data.layout import LOGS, TOKENS_JSON, DatasetLayout
from stackcoder.data.mix import check_mix, resolve_mix, resolve_sources
from stackcoder.data.options import TokenizeConfig
from stackcoder.errors import UserError
from stackcoder.output import OutputRule, json_record, prepare_output

SPLITS = ("train", "valid")
# resume a tokenization cut short with the same settings; a finished one only with --overwrite
OUTPUT = OutputRule("tokenization", f"{LOGS}/settings.json", json_record(indent=1), finished=TOKENS_JSON)


def _rank(seed: int, repo_name: str) -> bytes:
    return hashlib.blake2b(f"{seed}\0{repo_name}".encode(), digest_size=8).digest()


def repository_names(folder: Path) -> set[str]:
    """The ``repo_name`` values of a source's records (none for a source without the column)."""
    names: set[str] = set()
    for f in sorted(folder.glob("*.parquet")):
        if "repo_name" in pq.ParquetFile(f).schema_arrow.names:
            names.update(n for n in pq.read_table(f, columns=["repo_name"])[0].to_pylist() if n)
    return names


def held_out_repositories(folders: Path | list[Path], fraction: float, seed: int = 0) -> set[str]:
    """The repositories kept out of training, over all the sources' ``folders``, in lower case (so a
    repository's issues go where its code goes however each spells it): the ``fraction`` (at least
    one, when there are two or more) whose keyed hash sorts first, so the choice depends only on
    names and seed."""
    folders = [folders] if isinstance(folders, Path) else folders
    return _held_out({n for f in folders for n in repository_names(f)}, fraction, seed)


def _held_out(names: set[str], fraction: float, seed: int) -> set[str]:
    keys = sorted({n.lower() for n in names})
    if fraction <= 0 or len(keys) < 2:
        return set()
    k = min(len(keys) - 1, max(1, round(fraction * len(keys))))
    return set(sorted(keys, key=lambda n: _rank(seed, n))[:k])


def held_out_record(seed: int, source: str, record_id: str, fraction: float) -> bool:
    """A record with no repository (a text extra) is held out when its keyed hash falls below ``fraction``."""
    return int.from_bytes(_rank(seed, f"{source}\0{record_id}"), "big") < fraction * 2**64


class RepositorySplit(PipelineStep):
    """Pass on the documents of one split: ``valid`` holds the held-out repositories (lower-case
    names), ``train`` the rest; a record without a repository goes by its id (``held_out_record``)."""

    name = "🔀 Repository split"
    type = "🔢 - TOKENIZER"

    def __init__(
        self, split: str, held_out: set[str], *, source: str = "", seed: int = 0, fraction: float = 0.0
    ):
        super().__init__()
        self.split = split
        self.held_out = frozenset(held_out)
        self.source, self.seed, self.fraction = source, seed, fraction

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> Iterator:
        for doc in data:
            repo = doc.metadata.get("repo_name")
            if repo:
                valid = repo.lower() in self.held_out
            else:
                valid = held_out_record(self.seed, self.source, str(doc.id), self.fraction)
            if valid == (self.split == "valid"):
                self.stat_update(self.split)
                yield doc


def tokenize(config: TokenizeConfig) -> dict[str, Any]:
    """Tokenize a dataset's sources into ``OUTPUT/{train,valid}`` (one folder per source for a mix);
    returns what ``tokens.json`` records."""
    from stackcoder.tokenizer.files import load_tokenizer

    config.run.check()
    if not 0 <= config.valid_fraction < 1:
        raise UserError("--valid-fraction must be in [0, 1)")
    dataset = Path(config.dataset)
    sources = resolve_sources(dataset, config.sources, config.fim)
    given = check_mix(sources, config.epochs, config.weights)
    tok_file = Path(config.tokenizer)
    tok_file = tok_file / "tokenizer.json" if tok_file.is_dir() else tok_file
    tok = load_tokenizer(tok_file)
    out = Path(config.output) if config.output else DatasetLayout(dataset).tokens
    # one source (the documents): the layout and pass names of a tokenization without a mix
    single = len(sources) == 1
    dirs = {s.name: "" if single else s.name for s in sources}
    settings = {
        "dataset": _digest(sources[0].files())
        if single
        else {s.name: [str(s.path.resolve()), _digest(s.files())] for s in sources},
        "tokenizer": hashlib.sha256(tok_file.read_bytes()).hexdigest(),
        "valid_fraction": config.valid_fraction,
        "seed": config.seed,
    }
    prepare_output(out, settings, config.overwrite, OUTPUT)
    names = {n for s in sources for n in repository_names(s.path)}
    held_out = _held_out(names, config.valid_fraction, config.seed)
    vocab = tok.get_vocab_size(with_added_tokens=True)
    passes = []
    for split in SPLITS:
        for s in sources:
            steps = [
                ParquetReader(str(s.path), glob_pattern="*.parquet", text_key="text"),
                RepositorySplit(
                    split, held_out, source=s.name, seed=config.seed, fraction=config.valid_fraction
                ),
                DocumentTokenizer(
                    str(out / split / dirs[s.name]),
                    tokenizer_name_or_path=str(tok_file),
                    eos_token=None,  # every document already ends with <|endoftext|>
                    shuffle_documents=False,  # the loader shuffles, per epoch
                ),
            ]
            name = split if single else f"{split}.{s.name.replace('/', '.')}"
            passes.append(Pass(name, steps, len(s.files())))
    summary = {
        "dataset": str(dataset.resolve()),
        "output": str(out),
        "tokenizer": str(tok_file.resolve()),
        "vocab_size": vocab,
        "token_bytes": 4 if vocab > 2**16 else 2,
        "format": "datatrove tokenized shards (.ds uint16/uint32 ids, .ds.index uint64 document ends)",
        "seed": config.seed,
        "valid_fraction": config.valid_fraction,
        "valid_repositories": sorted(n for n in names if n.lower() in held_out),
        "mix": given,
        "sources": [
            {"name": s.name, "path": str(s.path.resolve()), "dir": dirs[s.name], "fim": s.fim}
            for s in sources
        ],
    }
    values = config.weights if given == "weights" else config.epochs
    finish = partial(finish_tokenize, out, summary, values)
    if not run_passes(passes, logs=out / LOGS, options=config.run, finish=finish, title="tokenize"):
        return {"output": str(out), "submitted": True}
    return json.loads((out / TOKENS_JSON).read_text())


def finish_tokenize(out: Path, summary: dict[str, Any], values: dict[str, float] | None = None) -> None:
    """``tokens.json``: the settings, each split's documents and tokens, and per source its counts
    and its place in the mix; then the mix table of the dataset's card, when it has one."""
    summary = dict(summary)
    sources = [dict(s) for s in summary.get("sources", [])]
    for split in SPLITS:
        for s in sources:
            ends = [_document_ends(f) for f in sorted((out / split / s["dir"]).glob("*.ds"))]
            s[split] = {
                "documents": sum(len(e) for e in ends),
                "tokens": sum(int(e[-1]) for e in ends if len(e)),
            }
        summary[split] = {k: sum(s[split][k] for s in sources) for k in ("documents", "tokens")}
    summary["sources"] = resolve_mix(sources, summary.get("mix", "epochs"), values or {})
    (out / TOKENS_JSON).write_text(json.dumps(summary, indent=2) + "\n")
    update_card_mix(Path(summary["dataset"]), summary)


def _digest(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.name}\0{f.stat().st_size}\n".encode())
    return h.hexdigest()


def _document_ends(ds_file: Path) -> list[int]:
    import numpy as np

    index = ds_file.with_name(ds_file.name + ".index")
    return np.fromfile(index, dtype="<u8").tolist() if index.is_file() else []
