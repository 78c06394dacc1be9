"""The StarCoder2 model config (recipe.md §3): `config.json` field names, published sizes, CPU flavors.

Field names are those of `transformers`' `Starcoder2Config`, so a `config.json` maps onto this dataclass
one key at a time; `from_hf_dict` / `to_hf_dict` only deal with the keys that moved between versions.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from stackcoder.errors import UserError

# `hidden_act` values we implement; both are GELU, "gelu_pytorch_tanh" is what the releases use.
ACTIVATIONS = {"gelu_pytorch_tanh": "tanh", "gelu": "none"}

# transformers' defaults where they differ from ours: a config.json that omits a key means these
HF_DEFAULTS = {
    "sliding_window": None,
    "max_position_embeddings": 4096,
    "rope_theta": 10_000.0,
    "bos_token_id": 50_256,
    "eos_token_id": 50_256,
}


@dataclass
class Starcoder2Config:
    vocab_size: int = 49_152
    hidden_size: int = 3072
    intermediate_size: int = 12_288
    num_hidden_layers: int = 30
    num_attention_heads: int = 24
    num_key_value_heads: int = 2
    hidden_act: str = "gelu_pytorch_tanh"
    max_position_embeddings: int = 16_384
    initializer_range: float = 0.018042
    norm_epsilon: float = 1e-5
    # the released 3B config.json has this odd value, not 1e6
    rope_theta: float = 999_999.4420358813
    # a query sees `sliding_window` keys, itself included (transformers' convention); None = full causal
    sliding_window: int | None = 4096
    use_bias: bool = True
    tie_word_embeddings: bool = True
    bos_token_id: int = 0
    eos_token_id: int = 0
    # released config.json files list 0.1 for the three dropouts (training-time only); 0 here, and a
    # loaded checkpoint keeps what its config.json says
    attention_dropout: float = 0.0
    residual_dropout: float = 0.0
    embedding_dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not a multiple of "
                f"num_attention_heads {self.num_attention_heads}"
            )
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_attention_heads {self.num_attention_heads} is not a multiple of "
                f"num_key_value_heads {self.num_key_value_heads}"
            )
        if self.head_dim % 2:
            raise ValueError(f"head_dim {self.head_dim} must be even for rotary embeddings")
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(
                f"hidden_act {self.hidden_act!r} not supported, use one of {sorted(ACTIVATIONS)}"
            )
        if self.sliding_window is not None and self.sliding_window < 1:
            raise ValueError(f"sliding_window must be >= 1 or None, got {self.sliding_window}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def num_parameters(self) -> int:
        """Parameter count (tied embeddings counted once), from the shapes alone."""
        C, F, L, V = self.hidden_size, self.intermediate_size, self.num_hidden_layers, self.vocab_size
        kv = self.num_key_value_heads * self.head_dim
        b = int(self.use_bias)
        attn = C * (C + 2 * kv) + b * (C + 2 * kv) + C * C + b * C
        mlp = 2 * C * F + b * (F + C)
        per_layer = attn + mlp + 4 * C  # two LayerNorms, weight and bias
        return V * C + L * per_layer + 2 * C + (0 if self.tie_word_embeddings else V * C)

    def to_hf_dict(self) -> dict[str, Any]:
        """The `config.json` content; `rope_theta` is written both flat (transformers 4, the released
        files) and inside `rope_parameters` (transformers 5)."""
        d = dataclasses.asdict(self)
        d.update(
            model_type="starcoder2",
            architectures=["Starcoder2ForCausalLM"],
            rope_parameters={"rope_type": "default", "rope_theta": self.rope_theta},
            use_cache=True,
        )
        return dict(sorted(d.items()))

    @classmethod
    def from_hf_dict(cls, d: dict[str, Any]) -> Starcoder2Config:
        """Read a `config.json` dict; unknown keys are ignored, unsupported values raise ValueError."""
        if d.get("model_type", "starcoder2") != "starcoder2":
            raise ValueError(f"model_type is {d.get('model_type')!r}, expected 'starcoder2'")
        # keys of the released configs that name variants transformers never implemented
        for key, supported in (("mlp_type", "default"), ("norm_type", "layer_norm")):
            if d.get(key, supported) != supported:
                raise ValueError(f"{key}={d[key]!r} is not supported (only {supported!r})")
        d = dict(d)
        rope = d.get("rope_parameters") or d.get("rope_scaling") or {}
        rope_type = rope.get("rope_type", rope.get("type", "default"))
        if rope_type != "default":
            raise ValueError(f"rope_type {rope_type!r} is not supported (only plain RoPE)")
        if "rope_theta" in rope:
            d["rope_theta"] = rope["rope_theta"]
        if isinstance(d.get("eos_token_id"), list):
            d["eos_token_id"] = d["eos_token_id"][0]  # the model config keeps one; generation reads all
        names = {f.name for f in dataclasses.fields(cls)}
        d = {**HF_DEFAULTS, **{k: v for k, v in d.items() if k in names}}
        return cls(**d)


# Published shapes (recipe.md §3, the released config.json files). The 3B and 7B tie lm_head to the
# embeddings (no lm_head.weight in their checkpoints, bigcode-project/starcoder2#18); the 15B does not.
SIZES: dict[str, Starcoder2Config] = {
    "3b": Starcoder2Config(),
    "7b": Starcoder2Config(
        hidden_size=4608,
        intermediate_size=18_432,
        num_hidden_layers=32,
        num_attention_heads=36,
        num_key_value_heads=4,
        rope_theta=1e6,
    ),
    "15b": Starcoder2Config(
        hidden_size=6144,
        intermediate_size=24_576,
        num_hidden_layers=40,
        num_attention_heads=48,
        num_key_value_heads=4,
        rope_theta=1e5,
        tie_word_embeddings=False,
        initializer_range=0.01275,
    ),
    # ~1.2B, the shape benchmarks/gpu_mfu.py trains (head_dim 128 like the releases)
    "1b": Starcoder2Config(
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=24,
        num_attention_heads=16,
        num_key_value_heads=4,
    ),
    # CPU flavors; the full vocabulary so the real tokenizer fits every one of them
    "medium": Starcoder2Config(
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        num_key_value_heads=4,
        max_position_embeddings=4096,
        sliding_window=4096,
    ),
    "small": Starcoder2Config(
        hidden_size=512,
        intermediate_size=2048,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        sliding_window=4096,
    ),
    "tiny": Starcoder2Config(
        hidden_size=256,
        intermediate_size=1024,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        sliding_window=1024,
    ),
    # for tests: a window shorter than typical test sequences, so window code paths run
    "debug": Starcoder2Config(
        hidden_size=64,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        sliding_window=32,
    ),
}


def get_size(name: str, **overrides: Any) -> Starcoder2Config:
    """A copy of a preset with some fields changed: `get_size("debug", vocab_size=512)`."""
    if name not in SIZES:
        raise UserError(f"unknown model size {name!r}: use one of {', '.join(SIZES)}")
    return dataclasses.replace(SIZES[name], **overrides)
