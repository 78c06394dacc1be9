"""File-level FIM on real repository documents: every transformed file comes back exactly."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from stackcoder.tokenizer.files import load_tokenizer
from stackcoder.train.dataset import TokenShards
from stackcoder.train.fim import Fim, FimIds, undo_fim


@pytest.fixture(scope="module")
def tok(tokenizer_dir):
    return load_tokenizer(tokenizer_dir)


@pytest.fixture(scope="module")
def docs(tokens):
    shards = TokenShards(tokens / "train")
    return [shards.document(i) for i in range(len(shards))]


def chunks(doc: np.ndarray, ids: FimIds) -> list[np.ndarray]:
    bounds = np.flatnonzero((doc == ids.file_sep) | (doc == ids.eos))
    return [doc[: bounds[0]]] + [doc[b + 1 : e] for b, e in zip(bounds, [*bounds[1:], len(doc)], strict=True)]


def test_token_shards_hold_the_documents_exactly(dataset, tokens, tok):
    texts = {
        t for f in (dataset / "documents").glob("*.parquet") for t in pq.read_table(f)["text"].to_pylist()
    }
    for split in ("train", "valid"):
        shards = TokenShards(tokens / split)
        assert len(shards) > 0
        for i in range(len(shards)):
            assert tok.decode(shards.document(i).tolist(), skip_special_tokens=False) in texts


@pytest.mark.parametrize("spm_rate", [0.0, 0.5, 1.0])
def test_every_fim_example_undoes_to_the_original_file(docs, tok, spm_rate):
    fim = Fim(tok, rate=1.0, file_rate=1.0, spm_rate=spm_rate)
    ids = fim.ids
    seen = {"psm": 0, "spm": 0}
    for k, doc in enumerate(docs):
        for seed in range(3):
            out = fim(doc, np.random.default_rng([seed, k]))
            assert undo_fim(out, tok) == tok.decode(doc.tolist(), skip_special_tokens=False)
            before, after = chunks(doc, ids), chunks(out, ids)
            assert len(before) == len(after)
            assert np.array_equal(before[0], after[0])  # the <repo_name> part is never transformed
            for original, new in zip(before[1:], after[1:], strict=True):
                if not len(original):
                    continue
                assert new[0] == ids.prefix  # file_rate 1: every file is a FIM example
                kind = "spm" if new[1] == ids.suffix else "psm"
                seen[kind] += 1
                if kind == "psm" and doc[0] == ids.repo_name:  # the path stays at the head of the prefix
                    path = tok.decode(original.tolist(), skip_special_tokens=False).split("\n", 1)[0]
                    assert tok.decode(new[1:].tolist(), skip_special_tokens=False).startswith(path)
    if spm_rate == 0.0:
        assert seen["spm"] == 0 and seen["psm"] > 20
    elif spm_rate == 1.0:
        assert seen["psm"] == 0 and seen["spm"] > 20
    else:
        assert 0.3 < seen["spm"] / (seen["psm"] + seen["spm"]) < 0.7


def test_rates_and_determinism(docs, tok):
    fim = Fim(tok)  # recipe.md §2: 0.5 of repositories, 0.5 of a candidate's files
    ids = fim.ids
    candidates = files = transformed = 0
    for rep in range(20):
        for k, doc in enumerate(docs):
            out = fim(doc, np.random.default_rng([rep, k]))
            assert np.array_equal(out, fim(doc, np.random.default_rng([rep, k])))
            n = sum(1 for c in chunks(out, ids)[1:] if len(c) and c[0] == ids.prefix)
            candidates += n > 0 or not np.array_equal(out, doc)
            files += len(chunks(doc, ids)) - 2  # file chunks: not the head, not after <|endoftext|>
            transformed += n
    runs = 20 * len(docs)
    assert 0.3 < candidates / runs < 0.7
    assert 0.15 < transformed / files < 0.35  # 0.5 × 0.5


def test_rate_zero_leaves_documents_alone_and_bad_rates_are_refused(docs, tok):
    from stackcoder.errors import UserError

    fim = Fim(tok, rate=0.0)
    assert all(fim(d, np.random.default_rng(0)) is d for d in docs)
    with pytest.raises(UserError, match="spm_rate"):
        Fim(tok, spm_rate=1.5)
