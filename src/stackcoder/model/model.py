"""The StarCoder2 decoder in plain PyTorch (recipe.md §3).

Pre-norm blocks with LayerNorm (bias), biased linears, a `c_fc -> gelu(tanh) -> c_proj` MLP, rotary
embeddings, grouped-query and sliding-window attention, tied or untied embeddings. Module names are
the Hugging Face checkpoint names, so `hf.py` copies weights key by key.

Packed sequences: pass `document_ids` (B, T); positions restart per document and no token attends
across documents. Which keys a query sees and the kernel that computes it ("sdpa", "flex", "flash",
picked from outside `forward` as `model.attn_impl`) are `attention.py`'s: `forward` builds the mask
once, and each `Attention` makes one `attend` call.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from stackcoder.model.attention import AttnMask, Cache, attend, build_mask
from stackcoder.model.config import ACTIVATIONS, Starcoder2Config
from stackcoder.model.loss import linear_cross_entropy


def document_positions(document_ids: torch.Tensor) -> torch.Tensor:
    """Position of each token within its document: (B, T) -> (B, T), restarting at 0 on each change."""
    B, T = document_ids.shape
    idx = torch.arange(T, device=document_ids.device).expand(B, T)
    starts = torch.ones_like(document_ids, dtype=torch.bool)
    starts[:, 1:] = document_ids[:, 1:] != document_ids[:, :-1]
    start_idx = torch.where(starts, idx, torch.zeros_like(idx)).cummax(dim=1).values
    return idx - start_idx


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
        y = attend(q, k, v, mask, cache, self.layer_idx, p)  # (B, T, nh, hd)
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
            window = self.config.sliding_window
            mask = build_mask(self.attn_impl, window, B, T, input_ids.device, document_ids, attention_mask)
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

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
