"""Weight-only int8/int4 (model/quant.py) and loading released-size checkpoints (model/hf.py): quantized
layers against the dense matmul on their own dequantized weights, PyTorch's int4 packing undone,
gradients to the input only, checkpoint names kept, logits close to bf16, the memory refusal, and peak
memory while loading an fp32 checkpoint at the 3B's width (measured in a child process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from stackcoder.errors import UserError
from stackcoder.model import Starcoder2, get_size, quant
from stackcoder.model.generate import KVCache, SamplingParams, generate
from stackcoder.model.hf import INDEX, load_model, loaded_bytes, save_model, tensor_index
from stackcoder.model.quant import QuantizedLinear

MODES = [("int8", 64), ("int4", 32), ("int4", 64), ("int4", 128)]


def gaussian_linear(N: int, K: int, seed: int = 0) -> torch.nn.Linear:
    torch.manual_seed(seed)
    lin = torch.nn.Linear(K, N)
    with torch.no_grad():
        lin.weight.normal_(0, 0.02)
        lin.weight[:, 7] *= 8  # an outlier input channel, as trained weights have
        lin.bias.normal_(0, 0.1)
    return lin


@pytest.mark.parametrize(("mode", "group"), MODES)
def test_quantized_linear_is_the_dense_matmul_on_its_dequantized_weight(mode, group):
    lin = gaussian_linear(208, 256)  # 208 rows: three 64-row blocks and a 16-row rest in int4's packing
    q = QuantizedLinear.from_linear(lin, mode, group)
    w = q.dequantize().t().float()  # (out, in)
    # error per weight: half a step (int8: amax/127 per row; int4: range/15 per group), plus the bf16
    # rounding of the scale, the zero and the dequantized weight
    step = (
        lin.weight.abs().amax(1, keepdim=True) / 127
        if mode == "int8"
        else (lambda g: (g.amax(-1) - g.amin(-1)).repeat_interleave(group, 1) / 15)(
            lin.weight.view(208, -1, group)
        )
    )
    assert ((w - lin.weight).abs() <= step * 0.55 + lin.weight.abs() / 256 + 1e-6).all()
    for shape in [(256,), (3, 256), (2, 5, 256), (1, 1, 4, 256)]:  # the kernel (<= 4 rows) and dense paths
        x = torch.randn(shape)
        with torch.no_grad():
            y = q(x)
        assert y.shape == (*shape[:-1], 208) and y.dtype == x.dtype
        ref = x.bfloat16().float() @ w.T + lin.bias.bfloat16().float()
        assert (y - ref).abs().max() <= 0.02 * ref.abs().max(), shape
    rows = quant.KERNEL_MAX_ROWS[mode]
    x = torch.randn(rows, 256, dtype=torch.bfloat16)
    kernel, dense = q._kernel(x).float(), (x @ q.dequantize()).float()
    assert (kernel - dense).abs().max() <= 0.02 * dense.abs().max()  # bf16 weights vs fp32 in-kernel


def test_int4_packing_is_pytorch_cpu_packing_and_unpacks():
    if quant._int4_cpu_block() is None:
        pytest.skip(f"int4 packing on {torch.backends.cpu.get_cpu_capability()} is not one we unpack")
    g = torch.Generator().manual_seed(1)
    for N, K in [(64, 64), (3 * 64 + 48, 128), (16, 256), (12288 // 16, 3072 // 16)]:
        values = torch.randint(0, 16, (N, K), generator=g, dtype=torch.int32)
        packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(values, 1)
        assert torch.equal(quant.unpack_int4_cpu(packed, N, K, torch.uint8).t().int(), values)
        assert torch.equal(quant.pack_int4_cpu(values.to(torch.uint8)), packed)  # ours, the loader's
        # packing row chunks of whole blocks and concatenating them is packing the whole (the loader does)
        chunks = [quant.pack_int4_cpu(v.to(torch.uint8)) for v in values.split(128)]
        assert torch.equal(torch.cat(chunks), packed)


@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_gradient_flows_to_the_input_not_the_weight(mode):
    lin = gaussian_linear(64, 128)
    q = QuantizedLinear.from_linear(lin, mode, 64)
    w = q.dequantize().t().float()
    for rows in (2, 9):  # kernel and dense forward paths
        x = torch.randn(rows, 128, requires_grad=True)
        g = torch.randn(rows, 64)
        (q(x) * g).sum().backward()
        assert torch.allclose(x.grad, g @ w, rtol=0.02, atol=0.02 * (g @ w).abs().max().item())
    assert not any(p.requires_grad for p in q.parameters())
    assert {n for n, _ in q.named_buffers()} == (
        {"qweight", "scales"} if mode == "int8" else {"qweight", "scales_and_zeros"}
    )


def random_checkpoint(path, size: str = "debug", dtype=torch.float32, max_shard_bytes=None, **overrides):
    torch.manual_seed(0)
    model = Starcoder2(get_size(size, **overrides)).eval()
    with torch.no_grad():  # spread-out logits, non-trivial norms and biases
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.normal_(1.0 if "norm" in name and name.endswith("weight") else 0.0, 0.1)
            else:
                p.normal_(0, 1.0 if "embed" in name else 0.7 / p.shape[-1] ** 0.5)
    kwargs = {"max_shard_bytes": max_shard_bytes} if max_shard_bytes else {}
    save_model(model, path, dtype=dtype, **kwargs)
    return model


@pytest.mark.parametrize("tied", [True, False])
def test_quantized_checkpoint_keeps_names_and_logits_close_to_bf16(tmp_path, tied):
    ref = random_checkpoint(tmp_path, vocab_size=320, tie_word_embeddings=tied, max_shard_bytes=80_000)
    assert (tmp_path / INDEX).exists()  # sharded, stored fp32
    bf16 = load_model(tmp_path, dtype=torch.bfloat16)
    x = torch.randint(0, 320, (2, 40))
    with torch.no_grad():
        want = bf16(x)[0].float()
        assert (want - ref(x)[0]).abs().max() <= 0.05 * want.abs().max()  # bf16 rounding only
    names = {n for n, _ in bf16.named_modules()}
    prompts = [[5, 9, 11, 3], [7, 1, 2, 8]]
    greedy = generate(bf16, prompts, SamplingParams(max_new_tokens=8))
    for mode, tol in (("int8", 0.02), ("int4", 0.1)):
        model = load_model(tmp_path, quantize=mode)
        assert model.quantize == mode and {n for n, _ in model.named_modules()} == names
        assert isinstance(model.model.layers[1].mlp.c_fc, QuantizedLinear)
        # lm_head int8 in both modes (a tied model keeps bf16 embeddings and an int8 copy as lm_head)
        assert isinstance(model.lm_head, QuantizedLinear) and model.lm_head.mode == "int8"
        assert model.model.embed_tokens.weight.dtype == torch.bfloat16
        with torch.no_grad():  # the chunked loss reads lm_head.weight: dequantized on access
            loss, ref_loss = model(x[:, :-1], x[:, 1:])[1], bf16(x[:, :-1], x[:, 1:])[1]
        assert abs(loss - ref_loss) <= 0.02 * ref_loss, mode
        with torch.no_grad():
            got = model(x)[0].float()
        assert (got - want).norm() <= tol * want.norm(), mode
        assert (got.argmax(-1) == want.argmax(-1)).float().mean() >= (0.95 if mode == "int8" else 0.8)
        # decoding one token at a time goes through the packed kernels (<= 4 rows), a whole sequence
        # through the dense matmul on the dequantized weights: same logits up to bf16 rounding
        seq = torch.tensor([prompts[0] + greedy[0]])  # (1, 12)
        cache = KVCache(model, 1, seq.shape[1])
        with torch.no_grad():
            full = model(seq)[0][0, 3:-1].float()  # (8, V)
            steps = [model(seq[:, :4], cache=cache)[0][0, -1]]
            steps += [model(seq[:, t : t + 1], cache=cache)[0][0, -1] for t in range(4, seq.shape[1] - 1)]
        assert (torch.stack(steps).float() - full).norm() <= 0.02 * full.norm(), mode


def test_memory_refusal_names_what_fits(tmp_path):
    random_checkpoint(tmp_path, vocab_size=320)
    tensors = tensor_index(tmp_path)
    cfg = get_size("debug", vocab_size=320)
    fp32, bf16 = loaded_bytes(cfg, tensors, None), loaded_bytes(cfg, tensors, torch.bfloat16)
    int8, int4 = (loaded_bytes(cfg, tensors, torch.bfloat16, q) for q in ("int8", "int4"))
    assert fp32 == 2 * bf16 > bf16 > int8 > int4 > 0
    base = 5 * 10**8  # hf.RUNTIME_BYTES
    with pytest.raises(
        UserError, match=r"the float32 weights take .*--dtype bfloat16 .*--quantize int8 .*int4"
    ):
        load_model(tmp_path, available_bytes=base + bf16 + 1)
    with pytest.raises(UserError, match=r"use --quantize int4 \(~") as e:
        load_model(tmp_path, dtype=torch.bfloat16, available_bytes=base + int4 + 1)
    assert "int8" not in str(e.value)
    with pytest.raises(UserError, match="no dtype or quantization fits"):
        load_model(tmp_path, quantize="int4", available_bytes=base)
    assert load_model(tmp_path, quantize="int4", available_bytes=base + int4).quantize == "int4"


# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork + exec, and the parent
# (pytest, holding the model it saved) is larger than the child's own peak
PEAK_CHILD = """
import json, sys, torch
from stackcoder.model import Starcoder2, get_size
from stackcoder.model.hf import load_model
def status(key):
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(key + ":"))
with torch.device("meta"):  # what the first meta-device build imports is code, not weights
    Starcoder2(get_size("debug"))
base = status("VmHWM")
mode = sys.argv[2] if sys.argv[2] != "bf16" else None
model = load_model(sys.argv[1], dtype=torch.bfloat16, quantize=mode)
peak = status("VmHWM")
tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
size = sum(t.numel() * t.element_size() for t in tensors.values())
x = torch.arange(1, 65)[None] * 37 % model.config.vocab_size
with torch.no_grad():
    logits = model(x)[0][0, -8:].float()
torch.save(logits, sys.argv[3])
print(json.dumps({"base": base, "peak": peak, "size": size}))
"""


@pytest.mark.slow
def test_fp32_checkpoint_at_3b_width_loads_with_memory_about_the_loaded_weights(tmp_path):
    """Two layers of the 3B (width 3072, 24/2 heads, FFN 12,288; a smaller vocabulary), stored fp32 in
    four shards (~0.8 GB): peak RSS of a child loading it in bf16/int8/int4 stays within 1.1x the
    loaded weights + 64 MB above its RSS before loading (a full-precision copy would add 0.8 GB)."""
    transformers = pytest.importorskip("transformers")
    ckpt = tmp_path / "ckpt"
    random_checkpoint(ckpt, "3b", num_hidden_layers=2, vocab_size=4096, max_shard_bytes=300_000_000)
    assert len(set(json.loads((ckpt / INDEX).read_text())["weight_map"].values())) > 2
    logits = {}
    for mode in ("bf16", "int8", "int4"):
        out = subprocess.run(
            [sys.executable, "-c", PEAK_CHILD, str(ckpt), mode, str(tmp_path / f"{mode}.pt")],
            capture_output=True,
            text=True,
            env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"},
        )
        assert out.returncode == 0, out.stderr[-2000:]
        r = json.loads(out.stdout.strip().splitlines()[-1])
        assert r["peak"] - r["base"] <= 1.1 * r["size"] + 64 * 2**20, (mode, r)
        logits[mode] = torch.load(tmp_path / f"{mode}.pt")
    want = logits["bf16"]
    assert (logits["int8"] - want).norm() <= 0.03 * want.norm()
    assert (logits["int4"] - want).norm() <= 0.15 * want.norm()
    theirs = transformers.Starcoder2ForCausalLM.from_pretrained(ckpt, dtype=torch.bfloat16).eval()
    x = torch.arange(1, 65)[None] * 37 % 4096
    with torch.no_grad():
        ref = theirs(x).logits[0, -8:].float()
    assert (want - ref).abs().max() <= 0.02 * ref.abs().max()  # bf16 parity with transformers kept
    assert torch.equal(want.argmax(-1), ref.argmax(-1))


def test_an_int4_layer_takes_the_largest_kernel_group_that_divides_its_width():
    from stackcoder.model.quant import INT4_GROUP_SIZE, int4_group

    assert INT4_GROUP_SIZE == 128 and int4_group(3072) == 128 and int4_group(12_288) == 128
    assert int4_group(64) == 64 and int4_group(96) == 32 and int4_group(3072, 64) == 64
    assert int4_group(72) == 128  # nothing divides it: check_int4_shape says why
    with pytest.raises(ValueError, match="group_size"):
        quant.check_int4_shape(72, 16, int4_group(72))
