"""Packing in lanes: rows are the document stream cut in seq_len pieces, document ids and targets
follow document boundaries, the loader resumes exactly, and ranks share lanes without overlap."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from stackcoder.errors import UserError
from stackcoder.tokenizer.files import load_tokenizer
from stackcoder.train.dataset import IGNORE, PackedLoader, TokenShards
from stackcoder.train.fim import Fim


@pytest.fixture(scope="module")
def shards(tokens):
    return TokenShards(tokens / "train")


def test_rows_are_the_lane_document_stream(shards):
    T, lanes = 48, 3
    loader = PackedLoader(shards, seq_len=T, lanes=lanes, seed=1)
    stream = {
        lane: np.concatenate([shards.document(int(d)) for d in loader._order(lane, 0)])
        for lane in range(lanes)
    }
    first_len = min(len(s) for s in stream.values())
    batches = [loader.next_batch() for _ in range(first_len // T - 1)]
    for lane in range(lanes):
        x = torch.cat([b.input_ids[lane] for b in batches]).numpy()
        assert np.array_equal(x, stream[lane][: len(x)])  # nothing skipped, nothing repeated
    for b in batches:
        assert b.input_ids.shape == b.targets.shape == b.document_ids.shape == (lanes, T)
        same_doc = b.document_ids[:, 1:] == b.document_ids[:, :-1]
        assert torch.equal(b.targets[:, :-1][same_doc], b.input_ids[:, 1:][same_doc])
        assert (b.targets[:, :-1][~same_doc] == IGNORE).all()  # never predict across documents


def test_every_document_once_per_epoch(shards):
    loader = PackedLoader(shards, seq_len=32, lanes=2, seed=0)
    seen = sorted(int(d) for lane in range(2) for d in loader._order(lane, 0))
    assert seen == list(range(len(shards)))
    assert not np.array_equal(loader._order(0, 0), loader._order(0, 1)) or len(loader.lane_docs[0]) < 3


def test_resume_gives_the_same_batches(shards, tokenizer_dir):
    fim = Fim(load_tokenizer(tokenizer_dir))
    a = PackedLoader(shards, seq_len=40, lanes=2, seed=3, fim=fim)
    for _ in range(7):
        a.next_batch()
    state = json.loads(json.dumps(a.state_dict()))  # as a checkpoint stores it
    b = PackedLoader(shards, seq_len=40, lanes=2, seed=3, fim=fim)
    b.load_state_dict(state)
    for _ in range(30):  # far enough to cross documents and epochs
        x, y = a.next_batch(), b.next_batch()
        assert torch.equal(x.input_ids, y.input_ids) and torch.equal(x.document_ids, y.document_ids)
    with pytest.raises(UserError, match="seq_len"):
        PackedLoader(shards, seq_len=41, lanes=2, seed=3).load_state_dict(state)


def test_ranks_split_lanes_without_overlap(shards):
    whole = PackedLoader(shards, seq_len=32, lanes=4, seed=0)
    ranks = [
        PackedLoader(shards, seq_len=32, lanes=4, lanes_here=range(2 * r, 2 * r + 2), seed=0) for r in (0, 1)
    ]
    assert not set(map(int, np.concatenate(list(ranks[0].lane_docs.values())))) & set(
        map(int, np.concatenate(list(ranks[1].lane_docs.values())))
    )
    for _ in range(10):
        b = whole.next_batch()
        parts = [r.next_batch() for r in ranks]
        assert torch.equal(b.input_ids, torch.cat([p.input_ids for p in parts]))
        assert torch.equal(b.targets, torch.cat([p.targets for p in parts]))


def test_too_few_documents_is_a_clear_error(shards):
    with pytest.raises(UserError, match="documents for"):
        PackedLoader(shards, seq_len=8, lanes=len(shards) + 1)


def test_shards_are_what_datatrove_and_nanotron_read(tokens, shards):
    """The same bytes through datatrove's DatatroveFolderDataset: windows of the concatenated documents."""
    from datatrove.utils.dataset import DatatroveFolderDataset

    info = json.loads((tokens / "tokens.json").read_text())
    ds = DatatroveFolderDataset(str(tokens / "train"), seq_len=32, token_size=info["token_bytes"])
    stream = np.concatenate([shards.document(i) for i in range(len(shards))])
    got = np.concatenate([ds[i]["input_ids"].numpy() for i in range(len(ds))])
    assert len(ds) > 10 and np.array_equal(got[:1000], stream[:1000])
    assert sum(info[s]["tokens"] for s in ("train", "valid")) > shards.num_tokens == info["train"]["tokens"]
