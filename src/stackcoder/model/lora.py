"""LoRA adapters on our StarCoder2, through PEFT and in PEFT's format (recipe.md §7).

Our module names are the checkpoint's (`model.layers.3.self_attn.q_proj`), so PEFT wraps our
`Starcoder2` as it wraps transformers' `Starcoder2ForCausalLM`, and saves the same keys
(`base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight`): an adapter trained here loads in
transformers + peft and in vLLM's LoRA serving, and one trained there loads here.

Base layers: `nn.Linear` in bf16 or fp32 (PEFT's own LoRA layer), bitsandbytes' NF4 `Linear4bit`
(PEFT's own dispatch; model/nf4.py), and our int8/int4 `QuantizedLinear` (model/quant.py), which PEFT
does not know: it is registered through PEFT's custom-module mapping
(`LoraConfig._register_custom_module`, the documented way for custom layers) to `QuantizedLoraLinear`,
PEFT's LoRA `Linear` around our module with merging refused (a quantized weight cannot take the update
exactly; merge into the full-precision base instead, `merge_checkpoint`).

For inference (`--adapter` on generate, serve, eval) `apply_adapter` merges the update into
full-precision weights, so decoding costs what the base costs; over a quantized base the LoRA layers stay
beside the quantized weights.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stackcoder.errors import UserError
from stackcoder.model.model import Starcoder2
from stackcoder.model.quant import QUANTIZED_LINEARS, QuantizedLinear

try:
    from peft import LoraConfig, PeftModel, set_peft_model_state_dict
    from peft.tuners.lora.layer import Linear as PeftLoraLinear
except ImportError as e:  # the `model` extra installs it
    raise UserError(
        f"LoRA needs the peft package ({e}): pip install peft (stackcoder's `model` extra)"
    ) from e

# every linear layer of a block (recipe.md §7: BigCode's finetune.py names gate/up/down_proj, which
# StarCoder2 does not have, so its MLP is never adapted; c_fc and c_proj are StarCoder2's MLP)
TARGETS = QUANTIZED_LINEARS  # q_proj k_proj v_proj o_proj c_fc c_proj
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
_KEY = re.compile(r"base_model\.model\.(.+)\.lora_([AB])\.weight")


class QuantizedLoraLinear(PeftLoraLinear):
    """PEFT's LoRA `Linear` over a `QuantizedLinear`: y = base(x) + B(A(dropout(x))) * scaling, the base
    computed by our int8/int4 kernels (gradients flow to x through the dequantized weight)."""

    def merge(self, *args: Any, **kwargs: Any) -> None:  # PEFT's signature
        raise UserError(
            "a LoRA update cannot be merged into int8/int4 weights exactly; merge into the full-precision "
            "base: stackcoder finetune merge --model BASE --adapter DIR --output OUT"
        )


def is_linear(module: nn.Module) -> bool:
    # bitsandbytes' Linear4bit subclasses nn.Linear
    return isinstance(module, nn.Linear | QuantizedLinear)


def check_targets(model: nn.Module, targets: list[str] | tuple[str, ...]) -> list[str]:
    """The linear modules `targets` name (PEFT's rule: a name equals the module path or ends it after a
    dot); a name that matches no linear layer is an error, never a silent no-op."""
    if not targets:
        raise UserError("--lora-targets is empty: name the linear layers to adapt, e.g. " + ",".join(TARGETS))
    linears = [name for name, m in model.named_modules() if is_linear(m)]
    kinds = sorted({n.rsplit(".", 1)[-1] for n in linears})
    matched = []
    for target in targets:
        hits = [n for n in linears if n == target or n.endswith("." + target)]
        if not hits:
            raise UserError(
                f"LoRA target {target!r} matches no linear layer of the model; StarCoder2's are "
                f"{', '.join(kinds)} (it has no gate_proj/up_proj/down_proj)"
            )
        matched += hits
    return sorted(set(matched))


def add_lora(
    model: Starcoder2,
    *,
    r: int,
    alpha: float,
    dropout: float,
    targets: list[str] | tuple[str, ...] = TARGETS,
    base: str = "",
) -> PeftModel:
    """`model` frozen, with fresh LoRA adapters (fp32: PEFT upcasts bf16 adapters) on `targets`; `base`
    is what `adapter_config.json` records as ``base_model_name_or_path``."""
    if r < 1:
        raise UserError(f"--lora-r must be at least 1, got {r}")
    check_targets(model, targets)
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(targets),
        task_type="CAUSAL_LM",  # what transformers' AutoPeftModelForCausalLM and vLLM expect
        base_model_name_or_path=base or None,
    )
    model.requires_grad_(False)
    model.name_or_path = base  # PEFT writes the base's name from here when it saves
    return _wrap(model, config)


def _wrap(model: Starcoder2, config: LoraConfig) -> PeftModel:
    config._register_custom_module({QuantizedLinear: QuantizedLoraLinear})
    with warnings.catch_warnings():
        # PEFT warns about any layer class it does not know (ours), then takes in/out_features from it
        warnings.filterwarnings("ignore", message="Unsupported layer type")
        # PeftModel, not get_peft_model's PeftModelForCausalLM, which wants transformers' generate()
        return PeftModel(model, config, autocast_adapter_dtype=True)


def save_adapter(peft_model: PeftModel, directory: str | Path) -> Path:
    """`adapter_config.json` + `adapter_model.safetensors` (and PEFT's model card) in `directory`."""
    # "auto" would compare the vocabulary with the base's config.json through transformers' config
    # class (ours has no from_pretrained) and, for a path that is not local, ask the Hub: embeddings
    # are never trained here, so never saved
    peft_model.save_pretrained(directory, save_embedding_layers=False)
    return Path(directory)


def read_adapter(adapter: str | Path) -> tuple[LoraConfig, dict[str, tuple[int, ...]]]:
    """An adapter directory's config and its tensors' shapes (from the safetensors header; nothing else
    is read), with one-line errors for what is not a LoRA adapter in PEFT's format."""
    adapter = Path(adapter)
    if not (adapter / ADAPTER_CONFIG).is_file():
        raise UserError(
            f"{adapter}: no {ADAPTER_CONFIG}; --adapter takes a PEFT LoRA adapter directory, e.g. the "
            "RUN/adapter that `stackcoder finetune` writes"
        )
    if not (adapter / ADAPTER_WEIGHTS).is_file():
        raise UserError(f"{adapter}: no {ADAPTER_WEIGHTS} (only safetensors adapters are read)")
    raw = json.loads((adapter / ADAPTER_CONFIG).read_text())
    if raw.get("peft_type") != "LORA":
        raise UserError(f"{adapter}: a {raw.get('peft_type')} adapter; only LoRA adapters are supported")
    with open(adapter / ADAPTER_WEIGHTS, "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    shapes = {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    return LoraConfig.from_pretrained(str(adapter)), shapes


def check_adapter(model: nn.Module, adapter: str | Path) -> LoraConfig:
    """The adapter's config, after checking that each of its LoRA matrices fits the module of `model` it
    names: an adapter trained for another base shape is a clear error, not a size-mismatch traceback."""
    config, shapes = read_adapter(adapter)
    made_for = config.base_model_name_or_path or "another model"
    fix = f"pass the base it was trained on as --model (adapter_config.json names {made_for})"
    for key, shape in sorted(shapes.items()):
        match = _KEY.fullmatch(key)
        if match is None:
            continue
        path, which = match.groups()
        try:
            module = model.get_submodule(path)
        except AttributeError:
            raise UserError(f"{adapter} adapts {path}, which this base does not have; {fix}") from None
        if not is_linear(module) or len(shape) != 2:
            raise UserError(f"{adapter}: {path} is not a linear layer of this base; {fix}")
        # lora_A is (r, in_features), lora_B is (out_features, r)
        have, want = (shape[1], module.in_features) if which == "A" else (shape[0], module.out_features)
        if have != want:
            side = "inputs" if which == "A" else "outputs"
            raise UserError(
                f"{adapter} was made for another base shape: its {path} has {have} {side}, this base's "
                f"{want}; {fix}"
            )
    return config


def apply_adapter(model: Starcoder2, adapter: str | Path, *, merge: bool | None = None) -> Starcoder2:
    """`model` (eval mode) with the adapter: merged into full-precision weights, or, over int8/int4
    weights (or with ``merge=False``), as PEFT's LoRA layers beside them. Returns our `Starcoder2`
    either way, so generation, the server's engine and evaluation use it unchanged."""
    from safetensors.torch import load_file

    config = check_adapter(model, adapter)
    config.inference_mode = True
    peft_model = _wrap(model, config)
    result = set_peft_model_state_dict(peft_model, load_file(Path(adapter) / ADAPTER_WEIGHTS))
    if result.unexpected_keys:
        raise UserError(f"{adapter}: tensors this base has no place for: {result.unexpected_keys[:3]}")
    missing = [k for k in result.missing_keys if "lora_" in k]
    if missing:
        raise UserError(f"{adapter}: adapter_config.json targets modules the weights lack: {missing[:3]}")
    if merge is None:
        merge = not any(isinstance(m, QuantizedLinear) for m in model.modules())
    out = peft_model.merge_and_unload() if merge else peft_model.get_base_model()
    out.adapter = str(adapter)  # for reports
    return out.eval()


def adapter_name(adapter: str | Path) -> str:
    """A short name for an adapter: its directory, or the run's when it is `RUN/adapter`."""
    p = Path(adapter).resolve()
    return p.parent.name if p.name == "adapter" else p.name


def merge_checkpoint(
    base: str | Path, adapter: str | Path, output: str | Path, *, dtype: torch.dtype | None = None
) -> Path:
    """A full HF-layout checkpoint: the base's weights (in `dtype`, default as stored) with the adapter
    merged in, and the base's tokenizer; transformers and vLLM load it like any StarCoder2."""
    from stackcoder.model.hf import TOKENIZER_FILES, load_model, save_model

    model = apply_adapter(load_model(base, dtype=dtype), adapter)
    tokenizer = base if any((Path(base) / f).is_file() for f in TOKENIZER_FILES) else None
    return save_model(model, output, tokenizer_dir=tokenizer)
