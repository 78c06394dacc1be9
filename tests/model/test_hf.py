"""Hugging Face-layout checkpoints: ours -> transformers and transformers -> ours, sharding, the released
3B names and shapes, and clear errors for what is missing (nothing is ever downloaded)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from stackcoder.errors import UserError
from stackcoder.model import Starcoder2, get_size
from stackcoder.model.hf import INDEX, WEIGHTS, eos_token_ids, load_config, load_model, save_model

transformers = pytest.importorskip("transformers")

TOL = 1e-5


def random_model(seed: int = 0, **overrides) -> Starcoder2:
    torch.manual_seed(seed)
    model = Starcoder2(get_size("debug", vocab_size=300, **overrides)).eval()
    with torch.no_grad():
        for p in model.parameters():  # non-trivial LayerNorm and bias values too
            p.normal_(0, 0.2) if p.dim() == 1 else p.normal_(0, 0.5 / p.shape[-1] ** 0.5)
    return model


def saved_keys(path) -> dict[str, tuple[int, ...]]:
    files = [path / WEIGHTS] if (path / WEIGHTS).exists() else sorted(path.glob("model-*.safetensors"))
    keys = {}
    for file in files:
        with safe_open(file, framework="pt") as f:
            for k in f.keys():  # noqa: SIM118
                keys[k] = tuple(f.get_slice(k).get_shape())
    return keys


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("max_shard_bytes", [None, 60_000])
def test_ours_to_transformers(tmp_path, tied, max_shard_bytes):
    ours = random_model(tie_word_embeddings=tied, sliding_window=10)
    kwargs = {"max_shard_bytes": max_shard_bytes} if max_shard_bytes else {}
    save_model(ours, tmp_path, **kwargs)
    if max_shard_bytes:
        index = json.loads((tmp_path / INDEX).read_text())
        assert len(set(index["weight_map"].values())) > 3 and not (tmp_path / WEIGHTS).exists()
        assert index["metadata"]["total_size"] == sum(
            p.numel() * 4 for k, p in ours.state_dict().items() if not (tied and k == "lm_head.weight")
        )
    else:
        assert (tmp_path / WEIGHTS).exists() and not (tmp_path / INDEX).exists()
    assert ("lm_head.weight" in saved_keys(tmp_path)) == (not tied)
    theirs, info = transformers.Starcoder2ForCausalLM.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info.values()), info  # nothing missing, unexpected or mismatched
    assert theirs.config.tie_word_embeddings == tied and theirs.config.sliding_window == 10
    x = torch.randint(0, 300, (2, 30))
    with torch.no_grad():
        assert (ours(x)[0] - theirs.eval()(x).logits).abs().max().item() <= TOL
    assert json.loads((tmp_path / "generation_config.json").read_text())["eos_token_id"] == 0


@pytest.mark.parametrize("tied", [True, False])
def test_transformers_to_ours(tmp_path, tied):
    cfg = get_size("debug", vocab_size=300, tie_word_embeddings=tied, sliding_window=10)
    torch.manual_seed(3)
    theirs = transformers.Starcoder2ForCausalLM(transformers.Starcoder2Config(**cfg.to_hf_dict())).eval()
    theirs.save_pretrained(tmp_path, max_shard_size="100KB")
    assert (tmp_path / INDEX).exists()  # sharded by transformers
    ours = load_model(tmp_path)
    assert ours.config == cfg
    assert (ours.lm_head.weight is ours.model.embed_tokens.weight) == tied
    x = torch.randint(0, 300, (2, 30))
    with torch.no_grad():
        assert (ours(x)[0] - theirs(x).logits).abs().max().item() <= TOL


def test_round_trip_in_bfloat16_and_resave(tmp_path):
    ours = random_model()
    save_model(ours, tmp_path / "a", dtype=torch.bfloat16)
    assert json.loads((tmp_path / "a" / "config.json").read_text())["torch_dtype"] == "bfloat16"
    back = load_model(tmp_path / "a")
    assert next(back.parameters()).dtype == torch.bfloat16
    save_model(back, tmp_path / "b", max_shard_bytes=50_000)
    save_model(back, tmp_path / "b")  # resaving unsharded removes the old shards and index
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "config.json",
        "generation_config.json",
        WEIGHTS,
    ]
    again = load_model(tmp_path / "b", dtype=torch.float32)
    for (name, a), b in zip(back.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a.float(), b), name


def released_3b_shapes(layers: int) -> dict[str, tuple[int, ...]]:
    """Names and shapes of bigcode/starcoder2-3b's model.safetensors (recipe.md §3), first `layers` layers."""
    C, kv, F, V = 3072, 2 * 128, 12288, 49152
    shapes = {"model.embed_tokens.weight": (V, C), "model.norm.weight": (C,), "model.norm.bias": (C,)}
    for i in range(layers):
        p = f"model.layers.{i}."
        for norm in ("input_layernorm", "post_attention_layernorm"):
            shapes[p + norm + ".weight"] = shapes[p + norm + ".bias"] = (C,)
        for proj, out in (("q_proj", C), ("k_proj", kv), ("v_proj", kv), ("o_proj", C)):
            shapes[p + f"self_attn.{proj}.weight"] = (out, C)
            shapes[p + f"self_attn.{proj}.bias"] = (out,)
        shapes[p + "mlp.c_fc.weight"], shapes[p + "mlp.c_fc.bias"] = (F, C), (F,)
        shapes[p + "mlp.c_proj.weight"], shapes[p + "mlp.c_proj.bias"] = (C, F), (C,)
    return shapes  # tied: no lm_head.weight


@pytest.mark.slow
def test_3b_shape_round_trips_through_both_libraries(tmp_path):
    cfg = get_size("3b", num_hidden_layers=2)
    torch.manual_seed(0)
    ours = Starcoder2(cfg).to(torch.bfloat16).eval()
    save_model(ours, tmp_path / "ours", max_shard_bytes=400_000_000)
    assert saved_keys(tmp_path / "ours") == released_3b_shapes(2)
    assert (tmp_path / "ours" / INDEX).exists()  # ~740 MB in bf16: sharded
    theirs, info = transformers.Starcoder2ForCausalLM.from_pretrained(
        tmp_path / "ours", output_loading_info=True
    )
    assert not any(info.values()), info
    assert theirs.config.rope_parameters["rope_theta"] == 999_999.4420358813
    x = torch.randint(0, 49152, (1, 16))
    with torch.no_grad():
        ref = theirs(x).logits
        assert (ours(x)[0].float() - ref.float()).abs().max().item() <= 1e-2  # bf16 arithmetic
    theirs.save_pretrained(tmp_path / "theirs")
    del theirs
    assert saved_keys(tmp_path / "theirs") == released_3b_shapes(2)
    back = load_model(tmp_path / "theirs")
    assert back.config == cfg
    for (name, a), b in zip(ours.state_dict().items(), back.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_missing_things_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="nothing is downloaded"):
        load_model("bigcode/starcoder2-3b")  # a hub id is not a directory here
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="missing config.json"):
        load_model(empty)
    save_model(random_model(), tmp_path / "m", max_shard_bytes=60_000)
    shards = sorted((tmp_path / "m").glob("model-*.safetensors"))
    shards[1].unlink()
    with pytest.raises(UserError, match=f"lists {shards[1].name}, which is missing"):
        load_model(tmp_path / "m")
    for f in (tmp_path / "m").glob("model*"):
        f.unlink()
    with pytest.raises(UserError, match="missing model.safetensors"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(UserError, match="only safetensors"):
        load_model(tmp_path / "m")


def test_mismatched_checkpoints_are_user_errors(tmp_path):
    save_model(random_model(), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 3}))
    with pytest.raises(UserError, match="missing .'model.layers.2"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "intermediate_size": 128}))
    with pytest.raises(UserError, match="c_fc.* has shape"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "mlp_type": "gated"}))
    with pytest.raises(UserError, match="mlp_type"):
        load_config(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(UserError, match="config.json"):
        load_config(tmp_path)


def test_eos_ids_and_tokenizer_copy(tmp_path):
    tok_dir = tmp_path / "tok"
    tok_dir.mkdir()
    (tok_dir / "tokenizer.json").write_text("{}")
    save_model(random_model(), tmp_path / "m", tokenizer_dir=tok_dir)
    assert (tmp_path / "m" / "tokenizer.json").read_text() == "{}"
    assert eos_token_ids(tmp_path / "m") == [0]
    (tmp_path / "m" / "generation_config.json").write_text(json.dumps({"eos_token_id": [0, 6]}))
    assert eos_token_ids(tmp_path / "m") == [0, 6]
    with pytest.raises(UserError, match="no tokenizer files"):
        save_model(random_model(), tmp_path / "n", tokenizer_dir=tmp_path / "m" / "nothing")
