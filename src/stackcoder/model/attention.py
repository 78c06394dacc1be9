"""Attention for the StarCoder2 model (recipe.md §3): which keys each query may see, and the kernel that
computes it. `model.py` builds one `AttnMask` per forward (`build_mask`, or the KV cache's mask during
generation) and each layer makes one `attend` call.

Three kernels, picked from outside the model (`model.attn_impl`, see `pick_attn_impl`): "sdpa"
(PyTorch's scaled_dot_product_attention, with a boolean mask only when plain causal is not enough),
"flex" (FlexAttention block masks, compiled) and "flash" (flash-attn's varlen kernel, CUDA only). The
mask is causal, within the sliding window (the query included, transformers' convention), within a
document when sequences are packed, and over real tokens when prompts are left-padded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from stackcoder.errors import UserError

ATTN_IMPLS = ("sdpa", "flex", "flash")


class Cache(Protocol):
    """What `forward` needs from a KV cache (generate.KVCache implements it)."""

    def step(self, attention_mask: torch.Tensor | None, T: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Start a forward over T new tokens: returns their position ids (B, T) and the boolean
        attention mask (B, 1, T, Tk) over the keys `update` will return (None: all of them)."""
        ...

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass
class AttnMask:
    """Which keys each query may see, in the form the chosen kernel takes. Built once per forward."""

    impl: str
    dense: torch.Tensor | None = None  # sdpa: (B, 1, Tq, Tk) bool, True = attend; None = see `causal`
    causal: bool = True  # with no dense mask: plain causal, or (False) every key returned by the cache
    block: Any = None  # flex: a BlockMask
    cu_seqlens: torch.Tensor | None = None  # flash: (n_docs + 1,) int32 document starts over B*T tokens
    max_seqlen: int = 0
    window: int | None = None


def check_attn_impl(name: str, auto: bool = True) -> str:
    """``name`` if it is a kernel we have (or, with ``auto``, "auto"); else a ``UserError`` naming them."""
    known = ("auto", *ATTN_IMPLS) if auto else ATTN_IMPLS
    if name not in known:
        raise UserError(f"unknown attention kernel {name!r}: use one of {', '.join(known)}")
    return name


def pick_attn_impl(device: torch.device | str, wanted: str = "auto") -> str:
    """The kernel to use: ``wanted``, or for "auto" flash-attn on a GPU when the package is importable,
    else SDPA (the CPU default: see docs/model.md for the FlexAttention measurement)."""
    if check_attn_impl(wanted) != "auto":
        return wanted
    if torch.device(device).type == "cuda":
        try:
            import flash_attn  # noqa: F401
        except ImportError:
            return "sdpa"
        return "flash"
    return "sdpa"


def dense_mask(
    q_idx: torch.Tensor,
    k_idx: torch.Tensor,
    window: int | None,
    k_valid: torch.Tensor | None = None,
    q_doc: torch.Tensor | None = None,
    k_doc: torch.Tensor | None = None,
) -> torch.Tensor:
    """Boolean (B|1, 1, Tq, Tk) mask: causal, within `window` keys (the query included), same document,
    valid key. Indices are column indices in the row (not positions), as transformers counts them.
    A query always sees itself, so rows of padding never go all-masked (NaN that would leak on)."""
    q, k = q_idx[..., :, None], k_idx[..., None, :]  # (.., Tq, 1), (.., 1, Tk)
    allowed = k <= q
    if window is not None:
        allowed = allowed & (k > q - window)
    if q_doc is not None:
        allowed = allowed & (q_doc[:, :, None] == k_doc[:, None, :])
    if k_valid is not None:
        allowed = allowed & k_valid[:, None, :]
    allowed = allowed | (k == q)
    return allowed.unsqueeze(-3) if allowed.dim() == 3 else allowed[None, None]


def build_mask(
    impl: str,
    window: int | None,
    B: int,
    T: int,
    device: torch.device,
    document_ids: torch.Tensor | None,
    attention_mask: torch.Tensor | None,
) -> AttnMask:
    """The mask of a forward without a cache, for kernel ``impl``: causal, within ``window`` keys,
    same document (``document_ids``), real tokens (``attention_mask``, left padding)."""
    check_attn_impl(impl, auto=False)
    if window is not None and window >= T:
        window = None  # the window covers the whole sequence: plain causal
    if attention_mask is not None and bool(attention_mask.all()):
        attention_mask = None
    if impl == "flash":
        if attention_mask is not None:
            raise ValueError("attn_impl='flash' takes document_ids for packing, not a padding mask")
        if document_ids is None:
            return AttnMask(impl, window=window)
        cu, max_len = cu_seqlens(document_ids, B, T, device)
        return AttnMask(impl, cu_seqlens=cu, max_seqlen=max_len, window=window)
    if impl == "flex":
        return AttnMask(impl, block=flex_block_mask(B, T, device, window, document_ids, attention_mask))
    if window is None and document_ids is None and attention_mask is None:
        return AttnMask(impl)  # is_causal=True: SDPA's fastest path, no mask in memory
    idx = torch.arange(T, device=device)
    valid = attention_mask.bool() if attention_mask is not None else None
    return AttnMask(impl, dense=dense_mask(idx, idx, window, valid, document_ids, document_ids))


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: AttnMask,
    cache: Cache | None,
    layer: int,
    dropout: float,
) -> torch.Tensor:
    """Attention of the (B, T, nh, hd) queries over the (B, T, n_kv, hd) keys and values, after the
    cache's keys and values when there is a cache (layer ``layer``'s), by ``mask.impl``'s kernel; GQA
    is native to all three. Returns (B, T, nh, hd)."""
    if mask.impl == "flash":  # never with a cache: generation runs SDPA
        return flash_attention(q, k, v, mask, dropout)
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, heads, T, hd)
    if cache is not None:
        k, v = cache.update(layer, k, v)  # (B, n_kv, Tk, hd)
    if mask.impl == "flex":
        y = flex_attention(q, k, v, block_mask=mask.block, enable_gqa=True)
    else:
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask.dense,
            dropout_p=dropout,
            is_causal=mask.dense is None and mask.causal,
            enable_gqa=True,
        )
    return y.transpose(1, 2)  # (B, T, nh, hd)


def cu_seqlens(
    document_ids: torch.Tensor | None, B: int, T: int, device: torch.device
) -> tuple[torch.Tensor, int]:
    """Document boundaries over the flattened (B*T) tokens, for flash-attn's varlen kernel."""
    if document_ids is None:
        starts = torch.arange(0, B * T + 1, T, device=device)
    else:
        new_doc = torch.ones_like(document_ids, dtype=torch.bool)
        new_doc[:, 1:] = document_ids[:, 1:] != document_ids[:, :-1]  # a new row also starts a doc
        starts = torch.cat([new_doc.flatten().nonzero().flatten(), torch.tensor([B * T], device=device)])
    starts = starts.to(torch.int32)
    return starts, int((starts[1:] - starts[:-1]).max())


def flash_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: AttnMask, p: float
) -> torch.Tensor:
    """flash-attn over (B, T, heads, hd), varlen when documents are packed; GQA is native. The window
    is (left, right) keys, inclusive: W - 1 to the left plus the query itself is W keys."""
    from flash_attn import flash_attn_func, flash_attn_varlen_func

    B, T, nh, hd = q.shape
    window = (mask.window - 1, 0) if mask.window is not None else (-1, -1)
    if mask.cu_seqlens is None:  # no packing: the plain kernel, and no host sync for max_seqlen
        return flash_attn_func(
            q, k, v, dropout_p=p, softmax_scale=1.0 / math.sqrt(hd), causal=True, window_size=window
        )
    y = flash_attn_varlen_func(
        q.reshape(B * T, nh, hd),
        k.reshape(B * T, -1, hd),
        v.reshape(B * T, -1, hd),
        mask.cu_seqlens,
        mask.cu_seqlens,
        mask.max_seqlen,
        mask.max_seqlen,
        dropout_p=p,
        softmax_scale=1.0 / math.sqrt(hd),
        causal=True,
        window_size=window,
    )
    return y.view(B, T, nh, hd)


_flex_compiled = None


def flex_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    # FlexAttention is only fast compiled; compile once per process (first call pays ~20 s on a CPU)
    global _flex_compiled
    if _flex_compiled is None:
        from torch.nn.attention.flex_attention import flex_attention as fa

        _flex_compiled = torch.compile(fa, dynamic=False)
    return _flex_compiled(q, k, v, **kwargs)


def flex_block_mask(
    B: int,
    T: int,
    device: torch.device,
    window: int | None,
    document_ids: torch.Tensor | None,
    attention_mask: torch.Tensor | None,
) -> Any:
    from torch.nn.attention.flex_attention import create_block_mask

    docs = document_ids
    valid = attention_mask.bool() if attention_mask is not None else None

    def mask_mod(b: torch.Tensor, h: torch.Tensor, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        allowed = k <= q
        if window is not None:
            allowed = allowed & (k > q - window)
        if docs is not None:
            allowed = allowed & (docs[b, q] == docs[b, k])
        if valid is not None:
            allowed = allowed & valid[b, k] | (k == q)
        return allowed

    return create_block_mask(mask_mod, B, None, T, T, device=device)
