"""The loader on a mix (recipe.md §6): sources drawn with the probabilities tokens.json records, the
same global batches for one rank or two, exact resume, epochs that wrap per source, and FIM per
source (a notebook script as one file)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from stackcoder.data.mix import mix_sources
from stackcoder.errors import UserError
from stackcoder.tokenizer.files import load_tokenizer
from stackcoder.train.dataset import MixSource, PackedLoader, TokenShards
from stackcoder.train.fim import Fim, undo_fim


def mix(tokens, tokenizer=None, weights=None) -> list[MixSource]:
    out = []
    for s in mix_sources(json.loads((tokens / "tokens.json").read_text())):
        fim = None
        if tokenizer is not None and s["fim"] != "none":
            fim = Fim(tokenizer, mode=s["fim"])
        weight = s["probability"] if weights is None else weights[s["name"]]
        out.append(MixSource(TokenShards(tokens / "train" / s["dir"]), weight, fim, s["name"]))
    return out


def test_sources_are_drawn_with_their_probabilities(mix_tokens):
    sources = mix(mix_tokens)
    p = np.array([s.weight for s in sources])
    loader = PackedLoader(sources, seq_len=256, lanes=4, seed=0)
    n = 4096  # draws per lane, 16,384 in all: a share's standard error is below 0.004
    draws = np.array([loader._source(lane, k) for lane in range(4) for k in range(n)])
    freq = np.bincount(draws, minlength=len(p)) / len(draws)
    assert np.abs(freq - p).max() < 0.02, (freq, p)  # 5 standard errors
    # the documents a lane reads are its draws, in order: after some batches, each source's count
    for _ in range(100):
        loader.next_batch()
    for lane in range(4):
        state = loader.state[lane]
        expected = np.bincount([loader._source(lane, k) for k in range(state["draw"])], minlength=len(p))
        place = [
            e * len(loader.source_docs[k][lane]) + i
            for k, (e, i) in enumerate(zip(state["epoch"], state["index"], strict=True))
        ]
        assert place == expected.tolist()
    assert sum(loader.documents_read()) == sum(loader.state[lane]["draw"] for lane in range(4)) > 30


def test_one_rank_and_two_see_the_same_batches(mix_tokens, mix_tokenizer):
    tok = load_tokenizer(mix_tokenizer)
    whole = PackedLoader(mix(mix_tokens, tok), seq_len=48, lanes=4, seed=5)
    ranks = [
        PackedLoader(mix(mix_tokens, tok), seq_len=48, lanes=4, lanes_here=range(2 * r, 2 * r + 2), seed=5)
        for r in (0, 1)
    ]
    for _ in range(40):
        b = whole.next_batch()
        parts = [r.next_batch() for r in ranks]
        assert torch.equal(b.input_ids, torch.cat([p.input_ids for p in parts]))
        assert torch.equal(b.document_ids, torch.cat([p.document_ids for p in parts]))
    assert [whole.state[lane] for lane in range(4)] == [r.state[lane] for r in ranks for lane in r.lanes_here]


def test_a_mix_resumes_exactly_and_wraps_its_sources(mix_tokens, mix_tokenizer):
    tok = load_tokenizer(mix_tokenizer)
    a = PackedLoader(mix(mix_tokens, tok), seq_len=40, lanes=2, seed=3)
    for _ in range(25):
        a.next_batch()
    state = json.loads(json.dumps(a.state_dict()))  # as a checkpoint stores it
    assert [name for name, _ in state["mix"]] == [s.name for s in a.sources]
    b = PackedLoader(mix(mix_tokens, tok), seq_len=40, lanes=2, seed=3)
    b.load_state_dict(state)
    for _ in range(200):  # far enough for the small sources to wrap
        x, y = a.next_batch(), b.next_batch()
        assert torch.equal(x.input_ids, y.input_ids) and torch.equal(x.document_ids, y.document_ids)
    # a small source read past its end starts again, in a new order of the same documents
    small = next(k for k, s in enumerate(a.sources) if s.name == "issues")
    assert max(a.state[lane]["epoch"][small] for lane in range(2)) >= 1
    for lane in range(2):
        first, second = a._order(lane, 0, small), a._order(lane, 1, small)
        assert sorted(first) == sorted(second)
    # another mix is not this run's
    other = {s.name: 1.0 for s in a.sources}
    with pytest.raises(UserError, match="mix"):
        PackedLoader(mix(mix_tokens, tok, other), seq_len=40, lanes=2, seed=3).load_state_dict(state)


def test_a_notebook_script_is_fim_as_one_file(mix_tokens, mix_tokenizer):
    tok = load_tokenizer(mix_tokenizer)
    fim = Fim(tok, rate=1.0, file_rate=1.0, mode="document")
    shards = TokenShards(mix_tokens / "train" / "jupyter_scripts")
    changed = 0
    for i in range(len(shards)):
        doc = shards.document(i)
        for seed in range(3):
            out = fim(doc, np.random.default_rng(seed))
            text = tok.decode(doc.tolist(), skip_special_tokens=False)
            assert out[0] == doc[0] and out[1] == fim.ids.prefix and out[-1] == doc[-1]
            assert undo_fim(out, tok) == text
            changed += not np.array_equal(out, doc)
    assert changed == 3 * len(shards) > 0


def test_tokens_of_before_the_mix_are_one_source():
    info = {"train": {"documents": 3, "tokens": 30}, "valid": {"documents": 1, "tokens": 9}}
    (only,) = mix_sources(info)
    assert (only["name"], only["dir"], only["fim"], only["probability"]) == (
        "documents",
        "",
        "repository",
        1.0,
    )
