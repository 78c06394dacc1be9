"""The chunked language-model loss: same value and gradients as logits + F.cross_entropy."""

from __future__ import annotations

import pytest
import torch

from stackcoder.model.loss import linear_cross_entropy


@pytest.mark.parametrize("chunk", [7, 64, 1000])
def test_linear_cross_entropy_equals_logits_then_cross_entropy(chunk):
    """The chunked loss with gradients computed in its forward: same loss and gradients as building
    the logits and calling F.cross_entropy, whatever the chunking; ignored targets count nowhere."""
    torch.manual_seed(0)
    x = torch.randn(50, 16, requires_grad=True)
    w = torch.randn(30, 16, requires_grad=True)
    t = torch.randint(0, 30, (50,))
    t[::4] = -100
    ref = torch.nn.functional.cross_entropy(x @ w.T, t, ignore_index=-100)
    gx, gw = torch.autograd.grad(ref * 3.0, (x, w))
    loss = linear_cross_entropy(x, w, t, chunk=chunk)
    ox, ow = torch.autograd.grad(loss * 3.0, (x, w))  # a non-unit upstream gradient
    assert abs(loss.item() - ref.item()) <= 1e-5
    assert (ox - gx).abs().max() <= 1e-5 and (ow - gw).abs().max() <= 1e-5
    with torch.no_grad():  # evaluation: no gradient work
        assert abs(linear_cross_entropy(x, w, t, chunk=chunk).item() - ref.item()) <= 1e-5
    none = linear_cross_entropy(x, w, torch.full((50,), -100), chunk=chunk)
    assert none.item() == 0.0
    assert torch.autograd.grad(none, w)[0].abs().max() == 0


def test_linear_cross_entropy_under_bf16_autocast():
    torch.manual_seed(0)
    x = torch.randn(40, 32, requires_grad=True)
    w = torch.randn(50, 32, requires_grad=True)
    t = torch.randint(0, 50, (40,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = linear_cross_entropy(x, w, t, chunk=16)
        ref = torch.nn.functional.cross_entropy((x @ w.T).float(), t)
    assert loss.dtype == torch.float32 and abs(loss.item() - ref.item()) < 0.05
    loss.backward()
    assert w.grad.dtype == torch.float32 and x.grad.dtype == torch.float32
    ref_gw = torch.autograd.grad(torch.nn.functional.cross_entropy(x @ w.T, t), w)[0]
    assert (w.grad - ref_gw).abs().max() < 0.05 * ref_gw.abs().max()
