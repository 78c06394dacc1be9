"""The language-model loss without the logits tensor: cross-entropy of `x @ W.T`, a chunk of rows at a
time, with its gradient computed in the forward pass (the idea of Liger-Kernel's fused linear
cross-entropy, in plain PyTorch).

`F.cross_entropy(lm_head(x))` keeps the (N, V) logits and their log-softmax for backward and then makes
their gradient: 3 x N x 49,152 x 4 bytes, most of a small model's training memory. Here only one chunk
of logits exists at a time; backward just scales the gradients already made. Same matmuls, same result.
"""

from __future__ import annotations

import torch

# rows of logits per chunk of the loss: few on a CPU (256 x 49,152 fp32 = 48 MiB; measured: peak memory
# falls with the chunk, speed does not change), more on a GPU, where small matmuls waste the device
LOSS_CHUNK_ROWS = {"cpu": 256}
LOSS_CHUNK_ROWS_DEFAULT = 4096


def linear_cross_entropy(
    x: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk: int | None = None
) -> torch.Tensor:
    """mean CE(x @ weight.T, targets), ignoring -100, one chunk of rows at a time.

    When gradients are needed they are computed in the forward pass, chunk by chunk (d logits is
    softmax - onehot), so neither the (N, V) logits nor their log-softmax are kept for backward: the
    same matmuls as `F.cross_entropy(lm_head(x))`, ~3 x N x V x 4 bytes less peak memory."""
    chunk = chunk or LOSS_CHUNK_ROWS.get(x.device.type, LOSS_CHUNK_ROWS_DEFAULT)
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
        return _LinearCrossEntropy.apply(x, weight, targets, chunk)
    return _ce_chunks(x, weight, targets, chunk, grads=False)[0]


def _ce_chunks(
    x: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk: int, grads: bool
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """The loss and, with `grads`, its gradients wrt x and (unless it is frozen) weight (in fp32)."""
    # under autocast the matmuls run in the autocast dtype, the softmax and the sums in fp32
    dev = x.device.type
    dtype = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else x.dtype
    w = weight.to(dtype)
    n_valid = (targets != -100).sum().clamp(min=1)
    total = torch.zeros((), dtype=torch.float32, device=x.device)
    grad_x = torch.empty_like(x) if grads else None
    # a frozen lm_head (LoRA fine-tuning) needs no (V, C) fp32 gradient: 0.6 GB and a matmul at the 3B
    grad_w = torch.zeros_like(weight, dtype=torch.float32) if grads and weight.requires_grad else None
    with torch.autocast(dev, enabled=False):
        for s in range(0, x.shape[0], chunk):
            xs, ts = x[s : s + chunk].to(dtype), targets[s : s + chunk]
            logits = (xs @ w.T).float()  # (n, V)
            lse = logits.logsumexp(-1)  # (n,)
            valid = ts != -100
            picked = logits.gather(1, ts.clamp(min=0)[:, None])[:, 0]
            total += ((lse - picked) * valid).sum()
            if not grads:
                continue
            g = logits.sub_(lse[:, None]).exp_()  # softmax, in the logits' memory
            g[torch.arange(len(ts), device=g.device), ts.clamp(min=0)] -= 1.0
            g = g.mul_((valid / n_valid)[:, None]).to(dtype)  # (n, V): d mean-loss / d logits
            grad_x[s : s + chunk] = g @ w
            if grad_w is None:
                continue
            if dtype == torch.float32:
                grad_w.addmm_(g.T, xs)
            else:
                grad_w += (g.T @ xs).float()
    return total / n_valid, grad_x, grad_w


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, targets, chunk):
        loss, grad_x, grad_w = _ce_chunks(x, weight, targets, chunk, grads=True)
        ctx.save_for_backward(grad_x, grad_w)
        ctx.weight_dtype = weight.dtype
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        grad_x, grad_w = ctx.saved_tensors
        grad_w = (grad_w * grad_loss).to(ctx.weight_dtype) if grad_w is not None else None
        return grad_x * grad_loss, grad_w, None, None
