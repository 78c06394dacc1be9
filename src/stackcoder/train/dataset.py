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

**A mix** (several sources, recipe.md §6: code, notebooks, issues, ...) deals every source's
documents to the lanes the same way, and a lane draws the source of its next document from the
sources' probabilities with a generator keyed by (seed, lane, draw number): the draws of a lane
depend on nothing else, so they are the same whatever the number of ranks, and resuming needs only
the lane's draw count and its place in each source (a source drawn past its end starts its next
epoch, reshuffled). The first source keeps the seeds of a one-source loader, so a dataset without
other sources trains exactly as before the mix existed.
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


@dataclass
class MixSource:
    """One source of a mix: its training shards (``None`` for a source never drawn), the weight of
    drawing its next document, and its FIM transform (``None``: left to right only)."""

    shards: TokenShards | None
    weight: float = 1.0
    fim: Fim | None = None
    name: str = ""


@dataclass
class MixSize:
    """What callers of a one-source loader read of ``loader.shards`` (sizes), for a mix: the sums."""

    folder: str
    num_tokens: int
    documents: int

    def __len__(self) -> int:
        return self.documents


DRAW_BLOCK = 1024  # a lane's source draws are made this many at a time (one generator per block)


class PackedLoader:
    """Rows of ``seq_len`` tokens for the lanes in ``lanes_here`` (of ``lanes``), one row per lane per
    ``next_batch()``; deterministic in ``seed``; ``fim=None`` packs the documents as they are.
    ``shards`` is one source's shards, or the sources of a mix (then ``fim`` is each source's own)."""

    def __init__(
        self,
        shards: TokenShards | list[MixSource],
        *,
        seq_len: int,
        lanes: int,
        lanes_here: range | None = None,
        seed: int = 0,
        fim: Fim | None = None,
    ):
        sources = [MixSource(shards, 1.0, fim)] if isinstance(shards, TokenShards) else list(shards)
        self.sources, self.seq_len, self.lanes, self.seed = sources, seq_len, lanes, seed
        self.lanes_here = lanes_here if lanes_here is not None else range(lanes)
        weights = np.array([max(0.0, float(s.weight)) if s.shards is not None else 0.0 for s in sources])
        if not len(sources) or weights.sum() <= 0:
            raise UserError("the mix has no source to draw from: give one a positive weight")
        self.probabilities = weights / weights.sum()
        self._cdf = np.cumsum(self.probabilities)
        drawn = np.flatnonzero(self.probabilities > 0)
        self._only = int(drawn[0]) if len(drawn) == 1 else None  # one source: no draws at all
        # per source, each lane's documents (None for a source never drawn)
        self.source_docs: list[dict[int, np.ndarray] | None] = []
        for k, src in enumerate(sources):
            if self.probabilities[k] == 0:
                self.source_docs.append(None)
                continue
            shards, n = src.shards, len(src.shards)
            if shards.num_tokens == 0:
                raise UserError(f"{shards.folder}: the token shards hold no tokens")
            if n < lanes and len(sources) == 1:
                raise UserError(
                    f"{shards.folder}: {n} documents for {lanes} rows per batch; every row packs its "
                    "own documents, so lower the global batch or give more data"
                )
            # the first source keeps a one-source loader's seeds (its runs are unchanged by the mix)
            key = [seed, 0x5EED] if k == 0 else [seed, 0x5EED, k]
            order = np.random.default_rng(key).permutation(n)
            # a source with fewer documents than lanes is shared: lane l rereads its document l mod n
            self.source_docs.append(
                {lane: order[lane::lanes] if lane < n else order[[lane % n]] for lane in self.lanes_here}
            )
        self.lane_docs = self.source_docs[0] or {}  # the first source's (one-source callers, tests)
        self.shards = (
            sources[0].shards
            if len(sources) == 1
            else MixSize("the mix", self.num_tokens, self.num_documents)
        )
        self.state = {lane: self._start() for lane in self.lanes_here}
        self._cache: OrderedDict[tuple[int, int, int, int], np.ndarray] = OrderedDict()
        self._draws: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()

    # ---- sizes -------------------------------------------------------------------------------
    @property
    def num_tokens(self) -> int:
        return sum(s.shards.num_tokens for s in self.sources if s.shards is not None)

    @property
    def num_documents(self) -> int:
        return sum(len(s.shards) for s in self.sources if s.shards is not None)

    # ---- the document stream of a lane ---------------------------------------------------------
    def _start(self) -> dict[str, Any]:
        if len(self.sources) == 1:
            return {"epoch": 0, "index": 0, "offset": 0}
        n = len(self.sources)
        return {"draw": 0, "epoch": [0] * n, "index": [0] * n, "offset": 0}

    def _source(self, lane: int, draw: int) -> int:
        """The source of the lane's ``draw``-th document: inverse-CDF draws from a generator keyed by
        (seed, lane, block), so any draw is found from its number alone."""
        if self._only is not None:
            return self._only
        block, i = divmod(draw, DRAW_BLOCK)
        key = (lane, block)
        if key not in self._draws:
            u = np.random.default_rng([self.seed, 0x313, lane, block]).random(DRAW_BLOCK)
            choice = np.searchsorted(self._cdf, u * self._cdf[-1], side="right")
            self._draws[key] = np.minimum(choice, len(self.sources) - 1)
            while len(self._draws) > 2 * len(self.lanes_here):
                self._draws.popitem(last=False)
        return int(self._draws[key][i])

    def _order(self, lane: int, epoch: int, source: int = 0) -> np.ndarray:
        docs = self.source_docs[source][lane]
        key = [self.seed, epoch, lane] if source == 0 else [self.seed, epoch, lane, source]
        return docs[np.random.default_rng(key).permutation(len(docs))]

    def _document(self, lane: int, source: int, epoch: int, index: int) -> np.ndarray:
        key = (lane, source, epoch, index)
        if key not in self._cache:
            src = self.sources[source]
            doc_id = int(self._order(lane, epoch, source)[index])
            tokens = src.shards.document(doc_id)
            if src.fim is not None:  # fresh FIM each epoch, the same on every rerun
                seeds = [self.seed, epoch, doc_id, 0xF1] + ([source] if source else [])
                tokens = src.fim(tokens, np.random.default_rng(seeds))
            self._cache[key] = tokens
            while len(self._cache) > 4 * len(self.lanes_here):
                self._cache.popitem(last=False)
        return self._cache[key]

    def _read(self, lane: int, pos: tuple, n: int, doc: int) -> tuple[list, list, tuple, int]:
        """``n`` tokens of the lane from ``pos`` (draw, per-source (epoch, index), offset), their
        document ids counted from ``doc``; and the position and document id after them."""
        draw, places, offset = pos
        places = list(places)
        tokens, docs = [], []
        while n:
            source = self._source(lane, draw)
            epoch, index = places[source]
            d = self._document(lane, source, epoch, index)
            if offset == len(d):  # this document is done: the next one (the next epoch after the last)
                index, offset, doc, draw = index + 1, 0, doc + 1, draw + 1
                if index == len(self.source_docs[source][lane]):
                    epoch, index = epoch + 1, 0
                places[source] = (epoch, index)
                continue
            piece = d[offset : offset + n]
            tokens.append(piece)
            docs.append(np.full(len(piece), doc))
            n -= len(piece)
            offset += len(piece)
        return tokens, docs, (draw, tuple(places), offset), doc

    def _position(self, lane: int) -> tuple:
        s = self.state[lane]
        if len(self.sources) == 1:
            return 0, ((s["epoch"], s["index"]),), s["offset"]
        return s["draw"], tuple(zip(s["epoch"], s["index"], strict=True)), s["offset"]

    def _set_position(self, lane: int, pos: tuple) -> None:
        draw, places, offset = pos
        if len(self.sources) == 1:
            self.state[lane] = {"epoch": places[0][0], "index": places[0][1], "offset": offset}
        else:
            epochs, indices = (list(x) for x in zip(*places, strict=True))
            self.state[lane] = {"draw": draw, "epoch": epochs, "index": indices, "offset": offset}

    def _row(self, lane: int) -> tuple[np.ndarray, np.ndarray]:
        """seq_len + 1 tokens from the lane's position and their document ids; advances by seq_len
        (the last token is only a target: the next row starts with it)."""
        tokens, docs, after, doc = self._read(lane, self._position(lane), self.seq_len, 0)
        last, last_doc, _, _ = self._read(lane, after, 1, doc)
        self._set_position(lane, after)
        return np.concatenate(tokens + last), np.concatenate(docs + last_doc)

    def next_batch(self) -> Batch:
        rows = [self._row(lane) for lane in self.lanes_here]
        tokens = torch.from_numpy(np.stack([r[0] for r in rows]))
        docs = torch.from_numpy(np.stack([r[1] for r in rows]))
        targets = tokens[:, 1:].clone()
        targets[docs[:, 1:] != docs[:, :-1]] = IGNORE
        return Batch(tokens[:, :-1].contiguous(), targets, docs[:, :-1].contiguous())

    def documents_read(self) -> list[int]:
        """Per source, the documents this loader's lanes have finished: divided by the source's
        size, the epochs seen (summed over ranks, the run's)."""
        counts = [0] * len(self.sources)
        for lane in self.lanes_here:
            draw, places, _ = self._position(lane)
            for k, (epoch, index) in enumerate(places):
                if self.source_docs[k] is not None:
                    counts[k] += epoch * len(self.source_docs[k][lane]) + index
        return counts

    # ---- resume --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = {"seed": self.seed, "seq_len": self.seq_len, "lanes": self.lanes, "state": dict(self.state)}
        if len(self.sources) > 1:  # a one-source state stays what it always was
            state["mix"] = self._mix()
        return state

    def _mix(self) -> list[list]:
        return [[s.name, round(float(p), 12)] for s, p in zip(self.sources, self.probabilities, strict=True)]

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("seed", "seq_len", "lanes"):
            if state[key] != getattr(self, key):
                raise UserError(
                    f"the checkpoint's loader has {key}={state[key]}, this run {getattr(self, key)}: "
                    "resume with the same data settings and global batch"
                )
        mix = self._mix() if len(self.sources) > 1 else None
        if state.get("mix") != mix:
            raise UserError(
                f"the checkpoint's loader drew from the mix {state.get('mix')}, this run from {mix}: "
                "resume with the same tokens (sources and weights)"
            )
        lanes = {int(k): v for k, v in state["state"].items()}
        self.state = {lane: dict(lanes[lane]) for lane in self.lanes_here}
        self._cache.clear()
