"""A 4-bit NF4 base for QLoRA on CUDA, through bitsandbytes (recipe.md §7: BigCode's fine-tuning script
loads StarCoder2 this way, NF4 with bf16 compute).

UNTESTED HERE: no CUDA device and no bitsandbytes on the machines this was written on; the code follows
bitsandbytes' documented `Linear4bit` / `Params4bit` API, and PEFT wraps `Linear4bit` with its own LoRA
layer (`peft.tuners.lora.bnb`). On the CPU use our int8/int4 weights instead (`--quantize int8|int4`,
model/quant.py). bitsandbytes is imported only here, only when asked for (`pip install bitsandbytes`,
the `qlora` extra).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from stackcoder.errors import UserError
from stackcoder.model.model import Starcoder2
from stackcoder.model.quant import QUANTIZED_LINEARS


def load_model_nf4(path: str | Path, device: torch.device | str) -> Starcoder2:
    """The checkpoint with the blocks' linears in NF4 on `device` (CUDA), the rest (embeddings, norms,
    lm_head) in bf16. The weights are read into bf16 on the CPU first (tensor by tensor, model/hf.py);
    each linear is quantized as it moves to the GPU, so GPU memory is the 4-bit model."""
    from stackcoder.model.hf import load_model

    device = torch.device(device)
    if device.type != "cuda":
        raise UserError(
            "--quantize nf4 (bitsandbytes) needs a CUDA device; on the CPU use --quantize int8 or int4"
        )
    try:
        import bitsandbytes as bnb
    except ImportError as e:
        raise UserError(f"--quantize nf4 needs bitsandbytes ({e}): pip install bitsandbytes") from None
    model = load_model(path, dtype=torch.bfloat16, device="cpu")
    for name, module in list(model.named_modules()):
        if not isinstance(module, nn.Linear) or name.rsplit(".", 1)[-1] not in QUANTIZED_LINEARS:
            continue
        q = bnb.nn.Linear4bit(
            module.in_features,
            module.out_features,
            bias=module.bias is not None,
            compute_dtype=torch.bfloat16,
            quant_type="nf4",
        )
        q.weight = bnb.nn.Params4bit(module.weight.data, requires_grad=False, quant_type="nf4")
        if module.bias is not None:
            q.bias = nn.Parameter(module.bias.data, requires_grad=False)
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent), attr, q.to(device))  # Params4bit quantizes on the move
    model.quantize = "nf4"
    return model.to(device)
