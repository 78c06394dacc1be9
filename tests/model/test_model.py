"""The architecture against transformers' Starcoder2 (fp32 logits within 1e-5), packed-sequence document
masking, the sliding-window boundary, and the attention kernels."""

from __future__ import annotations

import pytest
import torch

from stackcoder.model import Starcoder2, get_size
from stackcoder.model.attention import cu_seqlens, dense_mask
from stackcoder.model.model import document_positions

transformers = pytest.importorskip("transformers")

TOL = 1e-5


def make_pair(seed: int = 0, **overrides) -> tuple[Starcoder2, torch.nn.Module]:
    """Our model with random weights, and transformers' with the same weights (state_dict copy)."""
    cfg = get_size("debug", vocab_size=320, **overrides)
    torch.manual_seed(seed)
    ours = Starcoder2(cfg).eval()
    with torch.no_grad():  # larger than the init so that every layer matters to the logits
        for p in ours.parameters():
            p.normal_(0, 0.2) if p.dim() == 1 else p.normal_(0, 0.5 / p.shape[-1] ** 0.5)
    theirs = transformers.Starcoder2ForCausalLM(transformers.Starcoder2Config(**cfg.to_hf_dict())).eval()
    result = theirs.load_state_dict(ours.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    return ours, theirs


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # GQA 4 heads / 2 KV heads, window 32 > T
        {"sliding_window": 7},  # window shorter than the sequence
        {"sliding_window": None, "tie_word_embeddings": False},
        {"num_key_value_heads": 1, "sliding_window": 12, "tie_word_embeddings": False},  # MQA
        {"num_key_value_heads": 4, "rope_theta": 1e5},  # MHA
        {"use_bias": False, "num_hidden_layers": 3},
    ],
)
def test_logits_match_transformers(overrides):
    ours, theirs = make_pair(**overrides)
    x = torch.randint(0, 320, (3, 40))
    with torch.no_grad():
        ours_logits, _ = ours(x)
        ref = theirs(x).logits
    assert ours_logits.shape == ref.shape == (3, 40, 320)
    assert (ours_logits - ref).abs().max().item() <= TOL
    assert ref.std() > 0.1  # logits that vary, so the comparison means something


def test_loss_and_gradients_match_transformers():
    ours, theirs = make_pair(sliding_window=9)
    x = torch.randint(0, 320, (2, 24))
    targets = x[:, 1:].clone()
    targets[0, :3] = -100  # ignored positions
    labels = torch.cat([torch.full((2, 1), -100), targets], dim=1)  # transformers shifts labels itself
    _, loss = ours(x[:, :-1], targets)
    ref = theirs(x, labels=labels).loss
    assert abs(loss.item() - ref.item()) <= TOL
    loss.backward()
    ref.backward()
    theirs_grads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert (p.grad - theirs_grads[name].grad).abs().max().item() <= TOL, name


def test_sliding_window_boundary():
    """One layer, window W: position q sees tokens q-W+1..q (W tokens, itself included), not q-W.
    transformers counts the same way: the two models agree on the perturbed input too."""
    W, q = 5, 12
    ours, theirs = make_pair(num_hidden_layers=1, sliding_window=W)
    x = torch.randint(0, 320, (1, 16))
    with torch.no_grad():
        base, _ = ours(x)
        for j, visible in ((q - W, False), (q - W + 1, True), (q, True)):
            y = x.clone()
            y[0, j] = (x[0, j] + 1) % 320
            out, _ = ours(y)
            changed = (out[0, q] - base[0, q]).abs().max().item() > 1e-4
            assert changed == visible, f"token {j} visible={changed} from {q} with window {W}"
            assert (out - theirs(y).logits).abs().max().item() <= TOL


@pytest.mark.parametrize("window", [None, 6])
def test_packed_sequence_equals_documents_alone(window):
    ours, _ = make_pair(sliding_window=window)
    lengths = [[5, 17, 9, 1], [32]]  # two rows of 32 tokens
    torch.manual_seed(1)
    docs = [[torch.randint(0, 320, (n,)) for n in row] for row in lengths]
    x = torch.stack([torch.cat(row) for row in docs])
    doc_ids = torch.stack([torch.cat([torch.full((n,), i) for i, n in enumerate(row)]) for row in lengths])
    with torch.no_grad():
        packed, _ = ours(x, document_ids=doc_ids)
        for b, row in enumerate(docs):
            start = 0
            for d in row:
                alone, _ = ours(d[None])
                got = packed[b, start : start + len(d)]
                assert (got - alone[0]).abs().max().item() <= TOL
                start += len(d)
        # without document ids the packed row is one long document: different logits
        unmasked, _ = ours(x)
    assert (unmasked[0, 5:] - packed[0, 5:]).abs().max().item() > 1e-3


def test_packed_loss_equals_documents_loss():
    ours, _ = make_pair()
    a, b = torch.randint(0, 320, (11,)), torch.randint(0, 320, (7,))
    x = torch.cat([a[:-1], b[:-1]])[None]
    targets = torch.cat([a[1:], b[1:]])[None]
    doc_ids = torch.tensor([[0] * 10 + [1] * 6])
    _, packed = ours(x, targets, document_ids=doc_ids)
    _, la = ours(a[None, :-1], a[None, 1:])
    _, lb = ours(b[None, :-1], b[None, 1:])
    assert abs(packed.item() - (la.item() * 10 + lb.item() * 6) / 16) <= TOL


def test_document_positions_and_cu_seqlens():
    doc_ids = torch.tensor([[0, 0, 0, 1, 1, 2], [3, 3, 3, 3, 3, 3]])
    assert document_positions(doc_ids).tolist() == [[0, 1, 2, 0, 1, 0], [0, 1, 2, 3, 4, 5]]
    cu, longest = cu_seqlens(doc_ids, 2, 6, torch.device("cpu"))
    assert cu.tolist() == [0, 3, 5, 6, 12] and longest == 6 and cu.dtype == torch.int32
    cu, longest = cu_seqlens(None, 2, 6, torch.device("cpu"))
    assert cu.tolist() == [0, 6, 12] and longest == 6


def test_dense_mask_window_and_padding():
    idx = torch.arange(6)
    m = dense_mask(idx, idx, 3, k_valid=torch.tensor([[False, False, True, True, True, True]]))
    assert m.shape == (1, 1, 6, 6)
    assert m[0, 0, 5].tolist() == [False, False, False, True, True, True]  # 3 keys, itself included
    assert m[0, 0, 3].tolist() == [False, False, True, True, False, False]
    assert m[0, 0, 0].tolist() == [True, False, False, False, False, False]  # a pad row still sees itself


def test_left_padding_matches_unpadded():
    ours, _ = make_pair(sliding_window=8)
    x = torch.randint(1, 320, (1, 12))
    padded = torch.cat([torch.zeros(1, 4, dtype=torch.long), x], dim=1)
    mask = torch.cat([torch.zeros(1, 4, dtype=torch.long), torch.ones(1, 12, dtype=torch.long)], dim=1)
    pos = (mask.cumsum(1) - 1).clamp(min=0)
    with torch.no_grad():
        ref, _ = ours(x)
        got, _ = ours(padded, attention_mask=mask, position_ids=pos)
    assert torch.isfinite(got).all()
    assert (got[:, 4:] - ref).abs().max().item() <= TOL


def test_training_step_updates_weights_and_dropout_applies():
    cfg = get_size("debug", vocab_size=320, residual_dropout=0.5)
    torch.manual_seed(0)
    model = Starcoder2(cfg)
    x = torch.randint(0, 320, (2, 16))
    model.eval()
    with torch.no_grad():
        a, _ = model(x)
        b, _ = model(x)
    assert torch.equal(a, b)  # no dropout in eval
    model.train()
    with torch.no_grad():
        c, _ = model(x)
    assert not torch.allclose(a, c)
    before = model.model.layers[0].mlp.c_fc.weight.detach().clone()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    _, loss = model(x[:, :-1], x[:, 1:])
    loss.backward()
    opt.step()
    assert not torch.equal(before, model.model.layers[0].mlp.c_fc.weight)
    assert model.lm_head.weight is model.model.embed_tokens.weight  # still tied after a step


@pytest.mark.slow
def test_flex_attention_matches_sdpa():
    pytest.importorskip("torch.nn.attention.flex_attention")
    ours, _ = make_pair(sliding_window=6)
    x = torch.randint(0, 320, (2, 32))
    doc_ids = torch.tensor([[0] * 10 + [1] * 22, [0] * 32])
    with torch.no_grad():
        ref, _ = ours(x, document_ids=doc_ids)
        ours.attn_impl = "flex"
        got, _ = ours(x, document_ids=doc_ids)
    assert (got - ref).abs().max().item() <= TOL


@pytest.mark.skipif(not torch.cuda.is_available(), reason="flash-attn needs a CUDA GPU")
def test_flash_attention_matches_sdpa():
    pytest.importorskip("flash_attn", reason="flash-attn not installed")
    ours, _ = make_pair(sliding_window=6)
    ours = ours.cuda().to(torch.bfloat16)
    x = torch.randint(0, 320, (2, 32), device="cuda")
    doc_ids = torch.tensor([[0] * 10 + [1] * 22, [0] * 32], device="cuda")
    with torch.no_grad():
        ref, _ = ours(x, document_ids=doc_ids)
        ours.attn_impl = "flash"
        got, _ = ours(x, document_ids=doc_ids)
    assert (got.float() - ref.float()).abs().max().item() <= 0.05  # bf16


def test_loss_needs_no_logits_tensor():
    model, _ = make_pair()
    x = torch.randint(0, 320, (2, 17))
    logits, loss = model(x[:, :-1], x[:, 1:])
    assert logits is None and loss.ndim == 0
    with torch.no_grad():
        full, _ = model(x[:, :-1])
    ref = torch.nn.functional.cross_entropy(full.flatten(0, 1), x[:, 1:].flatten())
    assert abs(loss.item() - ref.item()) <= 1e-5
