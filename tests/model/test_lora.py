"""LoRA adapters in PEFT's format on our StarCoder2: the adapter we save is the one transformers + peft load
(equal logits, merged and unmerged), a merged checkpoint loads in transformers, int8/int4 bases take
adapters beside their quantized weights, gradient checkpointing changes no gradient, and the mistakes
(a target that matches nothing, rank 0, an adapter for another base shape) are one-line errors.
`generate`, `serve` and `eval` take `--adapter`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("peft")
from safetensors.torch import load_file  # noqa: E402

from stackcoder.errors import UserError  # noqa: E402
from stackcoder.model import Starcoder2, get_size  # noqa: E402
from stackcoder.model.hf import load_model, save_model  # noqa: E402
from stackcoder.model.lora import (  # noqa: E402
    TARGETS,
    QuantizedLoraLinear,
    add_lora,
    apply_adapter,
    merge_checkpoint,
    save_adapter,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "model"
VOCAB = 400  # the fixture tokenizer's


def random_base(path: Path, **shape) -> Path:
    torch.manual_seed(0)
    model = Starcoder2(get_size("debug", vocab_size=VOCAB, **shape))
    with torch.no_grad():  # spread-out logits, so an adapter visibly changes them
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0, 1.0 if "embed" in name else 1.5 / p.shape[-1] ** 0.5)
    return save_model(model, path, tokenizer_dir=FIXTURES)


def trained_adapter(base: Path, out: Path, r: int = 4) -> Path:
    """An adapter on every block linear with random (non-zero) B, as if trained."""
    peft_model = add_lora(load_model(base), r=r, alpha=2 * r, dropout=0.0, base=str(base))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    return save_adapter(peft_model, out)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return random_base(tmp_path_factory.mktemp("base"))


@pytest.fixture(scope="module")
def adapter(base, tmp_path_factory) -> Path:
    return trained_adapter(base, tmp_path_factory.mktemp("adapter"))


def test_saved_adapter_is_peft_format_and_transformers_gives_our_logits(base, adapter, tmp_path):
    transformers = pytest.importorskip("transformers")
    from peft import PeftModel

    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["base_model_name_or_path"] == str(base)
    assert sorted(config["target_modules"]) == sorted(TARGETS) and config["r"] == 4
    keys = set(load_file(adapter / "adapter_model.safetensors"))
    assert "base_model.model.model.layers.1.mlp.c_fc.lora_A.weight" in keys
    assert len(keys) == 2 * 6 * 2  # A and B for six linears in two layers

    x = torch.randint(0, VOCAB, (2, 40))
    with torch.no_grad():
        base_logits = load_model(base)(x)[0]
        ours = apply_adapter(load_model(base), adapter)(x)[0]  # merged into the fp32 weights
        hf = transformers.Starcoder2ForCausalLM.from_pretrained(base).eval()
        theirs_unmerged = PeftModel.from_pretrained(hf, adapter).eval()
        unmerged = theirs_unmerged(x).logits
        merged = theirs_unmerged.merge_and_unload()(x).logits
    assert not torch.allclose(ours, base_logits, atol=1e-2)  # the adapter does something
    assert torch.allclose(ours, unmerged, atol=1e-4)
    assert torch.allclose(ours, merged, atol=1e-4)

    # ours unmerged (the training path: PEFT's LoRA layers over our linears) is the same function
    with torch.no_grad():
        ours_unmerged = apply_adapter(load_model(base), adapter, merge=False)
        assert any("lora_A" in name for name, _ in ours_unmerged.named_parameters())
        assert torch.allclose(ours_unmerged(x)[0], unmerged, atol=1e-4)

    out = merge_checkpoint(base, adapter, tmp_path / "merged")
    assert (out / "tokenizer.json").is_file()
    with torch.no_grad():
        from_disk = transformers.Starcoder2ForCausalLM.from_pretrained(out).eval()(x).logits
    assert torch.allclose(from_disk, unmerged, atol=1e-4)


@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_quantized_base_keeps_the_adapter_beside_its_weights(base, adapter, mode):
    x = torch.randint(0, VOCAB, (1, 32))
    model = apply_adapter(load_model(base, quantize=mode), adapter)
    lora = [m for m in model.modules() if isinstance(m, QuantizedLoraLinear)]
    assert len(lora) == 12
    with torch.no_grad():  # the adapter moves the quantized model's logits as it moves the full model's
        moved = model(x)[0].float() - load_model(base, quantize=mode)(x)[0].float()
        want = apply_adapter(load_model(base), adapter)(x)[0] - load_model(base)(x)[0]
    assert torch.nn.functional.cosine_similarity(moved.flatten(), want.flatten(), dim=0) > 0.85
    with pytest.raises(UserError, match="full-precision base"):
        lora[0].merge()


def test_lora_trains_over_a_quantized_base_and_checkpointing_keeps_gradients(base):
    x, y = torch.randint(0, VOCAB, (2, 48)), torch.randint(0, VOCAB, (2, 48))

    def grads(quantize: str | None, checkpointing: bool) -> dict[str, torch.Tensor]:
        model = load_model(base, quantize=quantize, dtype=None if quantize else torch.float32)
        model.gradient_checkpointing = checkpointing
        torch.manual_seed(0)
        peft_model = add_lora(model, r=4, alpha=8, dropout=0.1, base=str(base)).train()
        _, loss = peft_model(x, y)
        loss.backward()
        out = {n: p.grad for n, p in peft_model.named_parameters() if p.requires_grad}
        assert out and all(g is not None and g.dtype == torch.float32 for g in out.values())
        assert not any(p.grad is not None for p in peft_model.parameters() if not p.requires_grad)
        return out

    plain, recomputed = grads(None, False), grads(None, True)
    assert plain.keys() == recomputed.keys()
    assert all(torch.equal(plain[k], recomputed[k]) for k in plain)  # same dropout draws, same sums
    quantized = grads("int8", True)
    assert any(g.abs().sum() > 0 for g in quantized.values())


def test_mistakes_are_one_line_errors(base, adapter, tmp_path):
    model = load_model(base)
    with pytest.raises(UserError, match="'gate_proj' matches no linear layer.*c_fc"):
        add_lora(model, r=4, alpha=8, dropout=0.0, targets=["q_proj", "gate_proj"])
    with pytest.raises(UserError, match="--lora-r must be at least 1"):
        add_lora(model, r=0, alpha=8, dropout=0.0)
    wider = random_base(tmp_path / "wider", hidden_size=128, intermediate_size=512)
    with pytest.raises(UserError, match="another base shape.*pass the base it was trained on"):
        apply_adapter(load_model(wider), adapter)
    shallower = random_base(tmp_path / "shallow", num_hidden_layers=1)
    with pytest.raises(UserError, match="layers.1.* which this base does not have"):
        apply_adapter(load_model(shallower), adapter)
    with pytest.raises(UserError, match="no adapter_config.json"):
        apply_adapter(load_model(base), tmp_path)


def test_generate_serve_and_eval_take_the_adapter(base, adapter, tmp_path, capsys):
    from tokenizers import Tokenizer

    from stackcoder.cli import main
    from stackcoder.eval.backends import LocalModel, Sampling
    from stackcoder.model.generate import SamplingParams, generate_text

    prompt = "def add(a, b):"
    merged = tmp_path / "merged"
    assert (
        main(["finetune", "merge", "--model", str(base), "--adapter", str(adapter), "-o", str(merged)]) == 0
    )
    assert "merged checkpoint" in capsys.readouterr().out
    assert main(["generate", "--model", str(merged), "--max-new-tokens", "16", prompt]) == 0
    want = capsys.readouterr().out
    assert (
        main(["generate", "--model", str(base), "--adapter", str(adapter), "--max-new-tokens", "16", prompt])
        == 0
    )
    assert capsys.readouterr().out == want
    assert main(["generate", "--model", str(base), "--max-new-tokens", "16", prompt]) == 0
    assert capsys.readouterr().out != want  # the adapter changes the completion

    backend = LocalModel(str(base), device="cpu", adapter=str(adapter))
    assert str(adapter) in backend.name
    s = Sampling(max_new_tokens=16)
    assert backend.complete([prompt], s) == LocalModel(str(merged), device="cpu").complete([prompt], s)

    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from stackcoder.serve.app import create_app
    from stackcoder.serve.config import ServeConfig

    tok = Tokenizer.from_file(str(base / "tokenizer.json"))
    library = generate_text(
        load_model(merged), tok, [prompt], SamplingParams(max_new_tokens=12), stop_token_ids=[0]
    )
    with TestClient(create_app(ServeConfig(model=str(base), adapter=str(adapter)))) as client:
        assert client.get("/v1/models").json()["data"][0]["id"] == f"{base.name}+{adapter.name}"
        r = client.post("/generate", json={"inputs": prompt, "parameters": {"max_new_tokens": 12}})
        assert r.status_code == 200, r.text
        assert r.json()["generated_text"] == library[0].text
