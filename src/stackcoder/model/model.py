"""The StarCoder2 decoder in plain PyTorch (recipe.md §3).

Pre-norm blocks with LayerNorm (bias), biased linears, a `c_fc -> gelu(tanh) -> c_proj` MLP, rotary
embeddings, grouped-query and sliding-window attention, tied or untied embeddings. Module names are
the Hugging Face checkpoint names, so `hf.py` copies weights key by key.

Packed sequences: pass `document_ids` (B, T); positions restart per document and no token attends
across documents. Attention goes through one of three kernels, picked from outside `forward`
(`model.attn_impl`, see `pick_attn_impl`): "sdpa" (PyTorch's scaled_dot_product_attention, with a
boolean mask only when plain causal is not enough), "flex" (FlexAttention block masks, compiled) and
"flash" (flash-attn's varlen kernel, CUDA only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from stackcoder.model.config import ACTIVATIONS, Starcoder2Config
from stackcoder.model.loss import linear_cross_entropy

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


def pick_attn_impl(device: torch.device | str) -> str:
    """flash-attn on a GPU when the package is importable, else SDPA (the CPU default: see docs/model.md
    for the FlexAttention measurement)."""
    if torch.device(device).type == "cuda":
        try:
            import flash_attn  # noqa: F401
        except ImportError:
            return "sdpa"
        return "flash"
    return "sdpa"


def document_positions(document_ids: torch.Tensor) -> torch.Tensor:
    """Position of each token within its document: (B, T) -> (B, T), restarting at 0 on each change."""
    B, T = document_ids.shape
    idx = torch.arange(T, device=document_ids.device).expand(B, T)
    starts = torch.ones_like(document_ids, dtype=torch.bool)
    starts[:, 1:] = document_ids[:, 1:] != document_ids[:, :-1]
    start_idx = torch.where(starts, idx, torch.zeros_like(idx)).cummax(dim=1).values
    return idx - start_idx


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


class MLP(nn.Module):
    def __init__(self, config: Starcoder2Config):
        super().__init__()
        self.c_fc = nn.Linear(config.hidden_size, config.intermediate_size, bias=config.use_bias)
        self.c_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=config.use_bias)
        self.approximate = ACTIVATIONS[config.hidden_act]
        self.dropout = config.residual_dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.c_fc(x), approximate=self.approximate)
        return F.dropout(self.c_proj(x), self.dropout, self.training)


class Attention(nn.Module):
    def __init__(self, config: Starcoder2Config, layer_idx: int):
        super().__init__()
        C, hd = config.hidden_size, config.head_dim
        self.n_head, self.n_kv, self.head_dim = config.num_attention_heads, config.num_key_value_heads, hd
        self.q_proj = nn.Linear(C, self.n_head * hd, bias=config.use_bias)
        self.k_proj = nn.Linear(C, self.n_kv * hd, bias=config.use_bias)
        self.v_proj = nn.Linear(C, self.n_kv * hd, bias=config.use_bias)
        self.o_proj = nn.Linear(self.n_head * hd, C, bias=config.use_bias)
        self.layer_idx = layer_idx
        self.attention_dropout, self.residual_dropout = config.attention_dropout, config.residual_dropout

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        mask: AttnMask,
        cache: Cache | None = None,
    ) -> torch.Tensor:
        B, T, _ = x.shape
        hd = self.head_dim
        q = apply_rope(self.q_proj(x).view(B, T, self.n_head, hd), *rope)  # (B, T, nh, hd)
        k = apply_rope(self.k_proj(x).view(B, T, self.n_kv, hd), *rope)  # (B, T, n_kv, hd)
        v = self.v_proj(x).view(B, T, self.n_kv, hd)  # (B, T, n_kv, hd)
        p = self.attention_dropout if self.training else 0.0
        if mask.impl == "flash":
            y = flash_attention(q, k, v, mask, p)  # (B, T, nh, hd)
        else:
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, heads, T, hd)
            if cache is not None:
                k, v = cache.update(self.layer_idx, k, v)  # (B, n_kv, Tk, hd)
            if mask.impl == "flex":
                y = flex_attention(q, k, v, block_mask=mask.block, enable_gqa=True)
            else:
                y = F.scaled_dot_product_attention(
                    q,
                    k,
                    v,
                    attn_mask=mask.dense,
                    dropout_p=p,
                    is_causal=mask.dense is None and mask.causal,
                    enable_gqa=True,
                )
            y = y.transpose(1, 2)  # (B, T, nh, hd)
        y = self.o_proj(y.reshape(B, T, self.n_head * hd))
        return F.dropout(y, self.residual_dropout, self.training)


class Block(nn.Module):
    def __init__(self, config: Starcoder2Config, layer_idx: int):
        super().__init__()
        self.input_layernorm = nn.LayerNorm(config.hidden_size, eps=config.norm_epsilon)
        self.self_attn = Attention(config, layer_idx)
        self.post_attention_layernorm = nn.LayerNorm(config.hidden_size, eps=config.norm_epsilon)
        self.mlp = MLP(config)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        mask: AttnMask,
        cache: Cache | None = None,
    ) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), rope, mask, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class Decoder(nn.Module):
    """The `model.` prefix of the checkpoint: embeddings, blocks, final norm."""

    def __init__(self, config: Starcoder2Config):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(Block(config, i) for i in range(config.num_hidden_layers))
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.norm_epsilon)


class Starcoder2(nn.Module):
    """The causal LM: `model.*` (Decoder) and `lm_head`, as Starcoder2ForCausalLM names them."""

    def __init__(self, config: Starcoder2Config):
        super().__init__()
        self.config = config
        self.model = Decoder(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        self.attn_impl = "sdpa"
        # recompute each block's activations in backward instead of keeping them (set from outside, like
        # attn_impl: `stackcoder finetune --gradient-checkpointing`); only while training with gradients
        self.gradient_checkpointing = False
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """transformers' init: N(0, initializer_range) for linears and embeddings, zero biases."""
        for m in self.modules():
            if isinstance(m, nn.Linear | nn.Embedding):
                nn.init.normal_(m.weight, std=self.config.initializer_range)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
            if isinstance(m, nn.LayerNorm):
                m.reset_parameters()

    def forward(
        self,
        input_ids: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        position_ids: torch.Tensor | None = None,
        document_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        logits_to_keep: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits (B, T', V), None), or with `targets` (B, T): (None, mean cross-entropy over the
        targets != -100), computed without the logits tensor.

        `targets` are already shifted (targets[:, t] is the token after input_ids[:, t]), as a packed
        training stream provides them. `attention_mask` (B, T), 1 = real token, is for left padding;
        `logits_to_keep` > 0 computes logits for the last positions only (generation).
        """
        B, T = input_ids.shape
        if cache is not None:  # generation: always SDPA over the cache's keys, whatever attn_impl says
            if document_ids is not None:
                raise ValueError("a KV cache holds one document per row: no document_ids with a cache")
            position_ids, dense = cache.step(attention_mask, T)
            mask = AttnMask("sdpa", dense=dense, causal=False)
        else:
            if position_ids is None:
                position_ids = (
                    document_positions(document_ids)
                    if document_ids is not None
                    else torch.arange(T, device=input_ids.device).expand(B, T)
                )
            mask = self.build_mask(B, T, input_ids.device, document_ids, attention_mask)
        x = self.model.embed_tokens(input_ids)  # (B, T, C)
        x = F.dropout(x, self.config.embedding_dropout, self.training)
        rope = rope_cos_sin(position_ids, self.config, x.dtype)
        checkpointing = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        for block in self.model.layers:
            if checkpointing:
                x = torch.utils.checkpoint.checkpoint(block, x, rope, mask, cache, use_reentrant=False)
            else:
                x = block(x, rope, mask, cache)
        x = self.model.norm(x)
        if targets is not None:  # (B, T, V) logits are never materialized: see linear_cross_entropy
            return None, linear_cross_entropy(x.flatten(0, 1), self.lm_head.weight, targets.flatten())
        if logits_to_keep:
            x = x[:, -logits_to_keep:]
        return self.lm_head(x), None  # (B, T', V)

    def build_mask(
        self,
        B: int,
        T: int,
        device: torch.device,
        document_ids: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
    ) -> AttnMask:
        window = self.config.sliding_window
        if window is not None and window >= T:
            window = None  # the window covers the whole sequence: plain causal
        impl = self.attn_impl
        if impl not in ATTN_IMPLS:
            raise ValueError(f"attn_impl {impl!r} is not one of {ATTN_IMPLS}")
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

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def rope_cos_sin(
    position_ids: torch.Tensor, config: Starcoder2Config, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape (B, T, 1, hd) for (B, T) positions, in float32 and then cast, as transformers.

    The frequencies are recomputed per call (hd/2 numbers) rather than kept in a buffer, which
    `model.to(bfloat16)` would round and a meta-device build would leave empty."""
    hd = config.head_dim
    exponent = torch.arange(0, hd, 2, dtype=torch.int64, device=position_ids.device).float() / hd
    inv_freq = 1.0 / (config.rope_theta**exponent)  # (hd/2,)
    freqs = position_ids[..., None].float() * inv_freq  # (B, T, hd/2)
    emb = torch.cat((freqs, freqs), dim=-1)[:, :, None, :]  # (B, T, 1, hd)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (B, T, heads, hd) by position; the "rotate half" layout of GPT-NeoX and transformers."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


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

    def mask_mod(b, h, q, k):  # noqa: ANN001 - FlexAttention's signature
        allowed = k <= q
        if window is not None:
            allowed = allowed & (k > q - window)
        if docs is not None:
            allowed = allowed & (docs[b, q] == docs[b, k])
        if valid is not None:
            allowed = allowed & valid[b, k] | (k == q)
        return allowed

    return create_block_mask(mask_mod, B, None, T, T, device=device)
