"""Training batches from token shards: documents read from memory-mapped ``.ds`` files, FIM applied
fresh each epoch, packed into fixed-length rows with per-document ids (the model's document masking).

Packing runs in **lanes**: a global batch of ``R`` rows has ``R`` lanes, lane ``l`` owns documents
``l, l + R, l + 2R, …`` of a seeded permutation and packs them, in a fresh seeded order each epoch,
into one row per step. A repository longer than a row continues in the lane's next row. A rank
reads only its own lanes, so ranks never overlap and never read each other's documents, and the
global batch does not depend on how many ranks share it: one process with gradient accumulation
sees exactly what N data-parallel ranks see together. A lane's state is three integers (epoch,
place in its order, token offset), so the loader resumes at its exact position — with any number of
ranks, as long as the global batch is the same.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stackcoder.errors import UserError
from stackcoder.train.fim import Fim

IGNORE = -100  # cross_entropy's ignore_index: no loss where the next token is another document's


class TokenShards:
    """The documents of a folder of datatrove ``.ds`` files, each a read-only memory map."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        files = sorted(self.folder.glob("*.ds"))
        if not files:
            raise UserError(f"{self.folder}: no token shards (*.ds); run `stackcoder tokenize` first")
        self.tokens: list[np.ndarray] = []
        starts, ends, owner = [], [], []
        for k, f in enumerate(files):
            index = f.with_name(f.name + ".index")
            if not index.is_file():
                raise UserError(f"{f}: no {index.name} (document boundaries); tokenize again")
            doc_ends = np.fromfile(index, dtype="<u8").astype(np.int64)
            self.tokens.append(
                np.memmap(f, dtype=_token_dtype(f), mode="r") if f.stat().st_size else np.zeros(0)
            )
            starts.append(np.concatenate([[0], doc_ends])[:-1].astype(np.int64))
            ends.append(doc_ends)
            owner.append(np.full(len(doc_ends), k, dtype=np.int32))
        self.starts, self.ends, self.owner = (np.concatenate(a) for a in (starts, ends, owner))
        self.num_tokens = int((self.ends - self.starts).sum())

    def __len__(self) -> int:
        return len(self.starts)

    def document(self, i: int) -> np.ndarray:
        return np.asarray(self.tokens[self.owner[i]][self.starts[i] : self.ends[i]], dtype=np.int64)


def _token_dtype(ds_file: Path) -> str:
    """uint16 or uint32, from the ``.metadata`` datatrove writes ("tokenizer|bytes" on its first line)."""
    meta = ds_file.with_name(ds_file.name + ".metadata")
    if meta.is_file():
        size = meta.read_text().splitlines()[0].rsplit("|", 1)[-1]
        if size in ("2", "4"):
            return "<u2" if size == "2" else "<u4"
    return "<u2"  # datatrove's default for vocabularies under 65,536 ids


@dataclass
class Batch:
    input_ids: torch.Tensor  # (n, T)
    targets: torch.Tensor  # (n, T), IGNORE where the next token starts another document
    document_ids: torch.Tensor  # (n, T), a new id at each document start within a row

    @property
    def tokens(self) -> int:
        return int((self.targets != IGNORE).sum())


class PackedLoader:
    """Rows of ``seq_len`` tokens for the lanes in ``lanes_here`` (of ``lanes``), one row per lane per
    ``next_batch()``; deterministic in ``seed``; ``fim=None`` packs the documents as they are."""

    def __init__(
        self,
        shards: TokenShards,
        *,
        seq_len: int,
        lanes: int,
        lanes_here: range | None = None,
        seed: int = 0,
        fim: Fim | None = None,
    ):
        if shards.num_tokens == 0:
            raise UserError(f"{shards.folder}: the token shards hold no tokens")
        if len(shards) < lanes:
            raise UserError(
                f"{shards.folder}: {len(shards)} documents for {lanes} rows per batch; every row packs its "
                "own documents, so lower the global batch or give more data"
            )
        self.shards, self.seq_len, self.lanes, self.seed, self.fim = shards, seq_len, lanes, seed, fim
        self.lanes_here = lanes_here if lanes_here is not None else range(lanes)
        order = np.random.default_rng([seed, 0x5EED]).permutation(len(shards))
        self.lane_docs = {lane: order[lane::lanes] for lane in self.lanes_here}
        self.state = {lane: {"epoch": 0, "index": 0, "offset": 0} for lane in self.lanes_here}
        self._cache: OrderedDict[tuple[int, int, int], np.ndarray] = OrderedDict()

    def _order(self, lane: int, epoch: int) -> np.ndarray:
        docs = self.lane_docs[lane]
        return docs[np.random.default_rng([self.seed, epoch, lane]).permutation(len(docs))]

    def _document(self, lane: int, epoch: int, index: int) -> np.ndarray:
        key = (lane, epoch, index)
        if key not in self._cache:
            doc_id = int(self._order(lane, epoch)[index])
            tokens = self.shards.document(doc_id)
            if self.fim is not None:  # fresh FIM each epoch, the same on every rerun
                tokens = self.fim(tokens, np.random.default_rng([self.seed, epoch, doc_id, 0xF1]))
            self._cache[key] = tokens
            while len(self._cache) > 4 * len(self.lanes_here):
                self._cache.popitem(last=False)
        return self._cache[key]

    def _read(self, lane: int, pos: tuple[int, int, int], n: int, doc: int) -> tuple[list, list, tuple, int]:
        """``n`` tokens of the lane from ``pos`` (epoch, index, offset), their document ids counted
        from ``doc``; and the position and document id after them."""
        epoch, index, offset = pos
        tokens, docs = [], []
        while n:
            d = self._document(lane, epoch, index)
            if offset == len(d):  # this document is done: the next one (the next epoch after the last)
                index, offset, doc = index + 1, 0, doc + 1
                if index == len(self.lane_docs[lane]):
                    epoch, index = epoch + 1, 0
                continue
            piece = d[offset : offset + n]
            tokens.append(piece)
            docs.append(np.full(len(piece), doc))
            n -= len(piece)
            offset += len(piece)
        return tokens, docs, (epoch, index, offset), doc

    def _row(self, lane: int) -> tuple[np.ndarray, np.ndarray]:
        """seq_len + 1 tokens from the lane's position and their document ids; advances by seq_len
        (the last token is only a target: the next row starts with it)."""
        s = self.state[lane]
        tokens, docs, after, doc = self._read(lane, (s["epoch"], s["index"], s["offset"]), self.seq_len, 0)
        last, last_doc, _, _ = self._read(lane, after, 1, doc)
        s.update(epoch=after[0], index=after[1], offset=after[2])
        return np.concatenate(tokens + last), np.concatenate(docs + last_doc)

    def next_batch(self) -> Batch:
        rows = [self._row(lane) for lane in self.lanes_here]
        tokens = torch.from_numpy(np.stack([r[0] for r in rows]))
        docs = torch.from_numpy(np.stack([r[1] for r in rows]))
        targets = tokens[:, 1:].clone()
        targets[docs[:, 1:] != docs[:, :-1]] = IGNORE
        return Batch(tokens[:, :-1].contiguous(), targets, docs[:, :-1].contiguous())

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "seq_len": self.seq_len, "lanes": self.lanes, "state": dict(self.state)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("seed", "seq_len", "lanes"):
            if state[key] != getattr(self, key):
                raise UserError(
                    f"the checkpoint's loader has {key}={state[key]}, this run {getattr(self, key)}: "
                    "resume with the same data settings and global batch"
                )
        lanes = {int(k): v for k, v in state["state"].items()}
        self.state = {lane: dict(lanes[lane]) for lane in self.lanes_here}
        self._cache.clear()
