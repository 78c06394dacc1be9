"""Model config: published shapes (recipe.md §3), config.json reading and writing, validation."""

from __future__ import annotations

import pytest
import torch

from stackcoder.errors import UserError
from stackcoder.model import SIZES, Starcoder2, Starcoder2Config, get_size
from stackcoder.model.attention import pick_attn_impl

# recipe.md §3: layers, hidden, heads, KV heads, FFN, RoPE θ, tied
PUBLISHED = {
    "3b": (30, 3072, 24, 2, 12_288, 999_999.4420358813, True),
    "7b": (32, 4608, 36, 4, 18_432, 1e6, True),
    "15b": (40, 6144, 48, 4, 24_576, 1e5, False),
}

# the released starcoder2-3b config.json (transformers 4.37 era: flat rope_theta, extra keys)
RELEASED_3B = {
    "architectures": ["Starcoder2ForCausalLM"],
    "attention_dropout": 0.1,
    "residual_dropout": 0.1,
    "embedding_dropout": 0.1,
    "bos_token_id": 0,
    "eos_token_id": 0,
    "hidden_act": "gelu_pytorch_tanh",
    "hidden_size": 3072,
    "initializer_range": 0.018042,
    "intermediate_size": 12288,
    "layer_norm_epsilon": 1e-05,
    "max_position_embeddings": 16384,
    "mlp_type": "default",
    "model_type": "starcoder2",
    "norm_epsilon": 1e-05,
    "norm_type": "layer_norm",
    "num_attention_heads": 24,
    "num_hidden_layers": 30,
    "num_key_value_heads": 2,
    "rope_theta": 999999.4420358813,
    "sliding_window": 4096,
    "torch_dtype": "float32",
    "use_bias": True,
    "use_cache": True,
    "vocab_size": 49152,
}


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_sizes(name):
    cfg = SIZES[name]
    L, C, H, KV, F, theta, tied = PUBLISHED[name]
    assert (
        cfg.num_hidden_layers,
        cfg.hidden_size,
        cfg.num_attention_heads,
        cfg.num_key_value_heads,
        cfg.intermediate_size,
        cfg.rope_theta,
        cfg.tie_word_embeddings,
    ) == (L, C, H, KV, F, theta, tied)
    assert cfg.head_dim == 128 and cfg.sliding_window == 4096 and cfg.max_position_embeddings == 16_384
    assert cfg.norm_epsilon == 1e-5 and cfg.use_bias and cfg.vocab_size == 49_152
    with torch.device("meta"):  # shapes only, no memory
        n = Starcoder2(cfg).num_parameters()
    assert n == cfg.num_parameters()
    assert abs(n / 1e9 - {"3b": 3.0, "7b": 7.2, "15b": 16.0}[name]) < 0.1  # 3.03B, 7.17B, 15.96B


def test_released_config_json_is_read():
    cfg = Starcoder2Config.from_hf_dict(RELEASED_3B)
    assert cfg == get_size("3b", attention_dropout=0.1, residual_dropout=0.1, embedding_dropout=0.1)


def test_transformers5_config_json_and_defaults():
    d = {
        "model_type": "starcoder2",
        "hidden_size": 64,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1234.0},
    }
    cfg = Starcoder2Config.from_hf_dict(d)
    assert cfg.rope_theta == 1234.0
    # absent keys mean transformers' defaults, not ours
    assert cfg.sliding_window is None and cfg.max_position_embeddings == 4096 and cfg.eos_token_id == 50_256


def test_to_hf_dict_round_trips_through_transformers():
    transformers = pytest.importorskip("transformers")
    cfg = get_size("debug", rope_theta=5e5, tie_word_embeddings=False)
    d = cfg.to_hf_dict()
    theirs = transformers.Starcoder2Config(**d)
    assert theirs.rope_parameters["rope_theta"] == 5e5 and theirs.sliding_window == 32
    assert not theirs.tie_word_embeddings and theirs.model_type == "starcoder2"
    assert Starcoder2Config.from_hf_dict(theirs.to_dict()) == cfg


@pytest.mark.parametrize(
    "change, message",
    [
        ({"mlp_type": "gated"}, "mlp_type"),
        ({"norm_type": "rms_norm"}, "norm_type"),
        ({"model_type": "llama"}, "model_type"),
        ({"rope_parameters": {"rope_type": "linear", "factor": 2.0}}, "rope_type"),
        ({"hidden_act": "silu"}, "hidden_act"),
        ({"num_key_value_heads": 5}, "num_key_value_heads"),
    ],
)
def test_unsupported_configs_raise(change, message):
    with pytest.raises(ValueError, match=message):
        Starcoder2Config.from_hf_dict({**RELEASED_3B, **change})


def test_get_size_copies():
    cfg = get_size("debug", vocab_size=100)
    assert cfg.vocab_size == 100 and SIZES["debug"].vocab_size == 49_152
    with pytest.raises(UserError, match="unknown model size '70b': use one of 3b, 7b, 15b, 1b, medium"):
        get_size("70b")


def test_an_unknown_attention_kernel_is_a_user_error():
    assert pick_attn_impl("cpu") == pick_attn_impl("cpu", "auto") == "sdpa"
    assert pick_attn_impl("cpu", "flex") == "flex"
    with pytest.raises(UserError, match="unknown attention kernel 'xformers': use one of auto, sdpa, flex"):
        pick_attn_impl("cpu", "xformers")
    model = Starcoder2(get_size("debug", vocab_size=64))
    model.attn_impl = "flash2"  # set from outside the config: refused on the first forward, not deep inside
    with pytest.raises(UserError, match="unknown attention kernel 'flash2': use one of sdpa, flex, flash"):
        model(torch.zeros(1, 4, dtype=torch.long))
