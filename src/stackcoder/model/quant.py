"""Weight-only int8 / int4 linear layers, quantized while a checkpoint loads (recipe.md §7: the memory
footprints and the llama.cpp formats people run StarCoder2 with on CPUs).

int8: one scale per output channel, symmetric (w = q * s, q in [-127, 127]). int4: asymmetric groups of
`group_size` inputs (w = (q - 8) * s + z, q in [0, 15]), tinygemm's convention. The kernels are PyTorch's
own (`aten._weight_int8pack_mm`, `aten._weight_int4pack_mm_for_cpu`, and on CUDA
`aten._weight_int4pack_mm`); docs/dependencies.md says why no other library. Those kernels are fast for
a few rows (decoding) and slow for many (a prompt), so a forward over many rows dequantizes the weight
to the compute dtype and runs the dense matmul instead (`KERNEL_MAX_ROWS`, measured in docs/model.md).

The blocks' linears (`q/k/v/o_proj`, `c_fc`, `c_proj`) get the chosen mode; `lm_head` gets int8 in both
modes (it is read every token: 0.3 GB of the 1.9 GB a 3B token would read in int4 if it stayed bf16;
int4 would cost more quality on the logits). The input embeddings stay in the compute dtype (a lookup
reads one row); a tied model keeps them and gets an int8 copy as its `lm_head`. A `QuantizedLinear`
keeps the module name of the `nn.Linear` it replaces: `model.layers.3.self_attn.q_proj` is still that.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import FunctionCtx

MODES = ("int8", "int4")
# int4 group: 32-128 is the usual range. 128 costs 0.031 byte/weight of bf16 scale+zero over 0.5 byte
# of weights (64: 0.0625) and decodes the 3B shape ~3% faster than 64 here; its perplexity cost on our
# trained model is in docs/model.md. A layer whose width 128 does not divide takes the largest of
# 64 / 32 that does (`int4_group`).
INT4_GROUP_SIZE = 128
# rows (tokens x batch) up to which the packed kernels beat dequantize + dense matmul on the CPU: both
# kernels walk all the weights once per 4 rows (their BLOCK_M), dequantizing costs a few passes over a
# bf16 copy; the int4 kernel's passes are cheaper (docs/model.md, "Weight-only quantization")
KERNEL_MAX_ROWS = {"int8": 16, "int4": 64}
# linears that get quantized: every linear inside a block
QUANTIZED_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "c_fc", "c_proj")
LM_HEAD_MODE = "int8"  # whatever the blocks' mode
# rows quantized at a time while loading: bounds the float32 temporaries to ~this many bytes
CHUNK_BYTES = 16 * 2**20

log = logging.getLogger(__name__)


def int4_group(in_features: int, group_size: int = INT4_GROUP_SIZE) -> int:
    """The int4 group a layer of width ``in_features`` uses: ``group_size`` when it divides the width,
    else the largest smaller kernel group (64, 32) that does (small debug models); else ``group_size``
    (``check_int4_shape`` then says why it cannot be quantized)."""
    for g in (group_size, *(g for g in (64, 32) if g < group_size)):
        if in_features % g == 0:
            return g
    return group_size


def bytes_per_weight(mode: str, in_features: int, group_size: int = INT4_GROUP_SIZE) -> float:
    """Stored bytes per weight of a quantized linear: the values and their bf16 scales (and zeros)."""
    if mode == "int8":
        return 1 + 2 / in_features
    return 0.5 + 4 / int4_group(in_features, group_size)


class QuantizedLinear(nn.Module):
    """`y = x @ W.T + b` with W stored as int8 (per output channel) or int4 (groups along the input).

    A drop-in `nn.Linear` for inference: `forward` takes activations of any leading shape (..., in)
    and returns (..., out) in the input's dtype (computed in `dtype`, the dtype of the scales). The
    quantized weight is a buffer, never trained; autograd flows to the *input* (backward multiplies by
    the dequantized weight), so adapters such as LoRA can be trained on top of a frozen quantized base.
    `bias` is an ordinary Parameter in `dtype`.

    Buffers: int8 `qweight` (out, in) int8 and `scales` (out,); int4 `qweight` in the kernel's packed
    layout (CPU: (out, in/2) uint8, CUDA: tinygemm's int32 tiles) and `scales_and_zeros`
    (in/group, out, 2). The packed layout belongs to the device the weight was quantized on: load on the
    device you run on (`load_model(..., device=)`) instead of moving the module.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        mode: str = "int8",
        group_size: int = INT4_GROUP_SIZE,
        dtype: torch.dtype = torch.bfloat16,
        device: torch.device | str | None = None,
    ):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"quantization mode {mode!r} is not one of {MODES}")
        if mode == "int4":
            check_int4_shape(in_features, out_features, group_size)
        self.in_features, self.out_features = in_features, out_features
        self.mode, self.group_size, self.dtype = mode, group_size, dtype
        device = torch.device(device) if device is not None else torch.get_default_device()
        self.packed_for = device.type  # the int4 layout differs between CPU and CUDA kernels
        N, K = out_features, in_features
        if mode == "int8":
            self.register_buffer("qweight", torch.empty(N, K, dtype=torch.int8, device=device))
            self.register_buffer("scales", torch.empty(N, dtype=dtype, device=device))
        else:
            if device.type == "cuda":  # tinygemm's tiles: (N/8, K/(inner_k_tiles*16), 32, inner_k_tiles/2)
                packed = torch.empty(N // 8, K // 128, 32, 4, dtype=torch.int32, device=device)
            else:
                packed = torch.empty(N, K // 2, dtype=torch.uint8, device=device)
            self.register_buffer("qweight", packed)
            self.register_buffer(
                "scales_and_zeros", torch.empty(K // group_size, N, 2, dtype=dtype, device=device)
            )
        self.bias = (
            nn.Parameter(torch.empty(N, dtype=dtype, device=device), requires_grad=False) if bias else None
        )

    # ---- quantizing -----------------------------------------------------------------------------------
    @classmethod
    def from_linear(
        cls,
        linear: nn.Linear,
        mode: str,
        group_size: int = INT4_GROUP_SIZE,
        dtype: torch.dtype = torch.bfloat16,
    ) -> QuantizedLinear:
        """Quantize an existing `nn.Linear` (tests, and models built in memory)."""
        q = cls(
            linear.in_features,
            linear.out_features,
            linear.bias is not None,
            mode,
            group_size,
            dtype,
            linear.weight.device,
        )
        with torch.no_grad():
            q.set_weight(linear.weight)
            if linear.bias is not None:
                q.bias.copy_(linear.bias)
        return q

    @torch.no_grad()
    def set_weight(self, weight: torch.Tensor, on_chunk: Callable[[int, int], None] | None = None) -> None:
        """Quantize a full-precision (out, in) weight (any float dtype, any device, e.g. a memory-mapped
        checkpoint tensor) into this module's buffers, a chunk of rows at a time so the float32
        temporaries stay ~CHUNK_BYTES whatever the weight's size; `on_chunk(r0, r1)` is called after
        rows r0:r1 were read (the loader drops their mapped pages)."""
        N, K = self.out_features, self.in_features
        if tuple(weight.shape) != (N, K):
            raise ValueError(f"weight shape {tuple(weight.shape)} != ({N}, {K})")
        step = max(64, CHUNK_BYTES // (4 * K) // 64 * 64)  # whole 64-row blocks: the int4 packing unit
        dev = self.qweight.device
        if self.mode == "int4" and self.packed_for == "cuda":
            rows = []
            for r in range(0, N, step):
                rows.append(
                    _quantize_int4(weight[r : r + step].to(dev, torch.float32), self.group_size, self.dtype)
                )
                if on_chunk is not None:
                    on_chunk(r, min(N, r + step))
            q = torch.cat([r[0] for r in rows])  # (N, K) uint8 values 0..15
            self.scales_and_zeros.copy_(torch.cat([r[1] for r in rows], dim=1))
            packed = (q[:, ::2] << 4 | q[:, 1::2]).contiguous()  # (N, K/2): tinygemm's input layout
            self.qweight = torch.ops.aten._convert_weight_to_int4pack(packed, 8)
            return
        for r in range(0, N, step):
            w = weight[r : r + step].to(dev, torch.float32)  # (rows, K)
            if self.mode == "int8":
                q, s = _quantize_int8(w, self.dtype)
                self.qweight[r : r + step] = q
                self.scales[r : r + step] = s
            else:
                q, sz = _quantize_int4(w, self.group_size, self.dtype)
                # the CPU packing works on blocks of <= 64 rows, so packed row chunks concatenate
                self.qweight[r : r + step] = pack_int4_cpu(q)
                self.scales_and_zeros[:, r : r + step] = sz
            if on_chunk is not None:
                on_chunk(r, min(N, r + step))

    # ---- using ----------------------------------------------------------------------------------------
    @property
    def weight(self) -> torch.Tensor:
        """The dequantized (out, in) weight, made on each access (for code that reads `.weight`: the
        chunked loss of `Starcoder2.forward(targets=...)`, adapter libraries); not a Parameter."""
        return self.dequantize().t()

    def dequantize(self) -> torch.Tensor:
        """W.T as a dense (in, out) tensor in `dtype` (the layout the dense matmul reads fastest)."""
        if self.mode == "int8":
            return (self.qweight.to(self.dtype) * self.scales[:, None]).t()
        if self.packed_for == "cpu":
            N, K, G = self.out_features, self.in_features, self.group_size
            q_t = unpack_int4_cpu(self.qweight, N, K, self.dtype, signed=True)  # (K, N): q - 8
            if q_t is not None:
                s, z = self.scales_and_zeros.unbind(-1)  # (K/G, N) each
                w_t = q_t.view(K // G, G, N)
                # (q - 8) * s + z in one pass, rounded once (folding -8 s into z would round a per-group
                # offset that every weight of the group carries: 1-3% off the output, measured)
                torch.addcmul(z[:, None], w_t, s[:, None], out=w_t)
                return q_t
        # a layout we cannot unpack: the kernel applied to the identity returns W.T (slow, correct)
        eye = torch.eye(self.in_features, dtype=self.dtype, device=self.qweight.device)
        return self._kernel(eye)

    def _kernel(self, x: torch.Tensor) -> torch.Tensor:
        """x (M, in) in `dtype` -> x @ W.T (M, out), with the packed kernel for this mode and device."""
        if self.mode == "int8":
            if x.device.type == "cpu":
                return torch.ops.aten._weight_int8pack_mm(x, self.qweight, self.scales)
            return F.linear(x, self.qweight.to(x.dtype)) * self.scales  # GPU: dequantize on the fly
        if x.device.type == "cpu":
            return torch.ops.aten._weight_int4pack_mm_for_cpu(
                x, self.qweight, self.group_size, self.scales_and_zeros
            )
        return torch.ops.aten._weight_int4pack_mm(x, self.qweight, self.group_size, self.scales_and_zeros)

    def _matmul(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != self.packed_for:
            raise RuntimeError(
                f"a {self.mode} weight quantized for {self.packed_for} cannot run on {x.device.type}: "
                "load the checkpoint on the device you run on (load_model(..., device=...))"
            )
        if x.shape[0] <= KERNEL_MAX_ROWS[self.mode] or x.device.type != "cpu":
            return self._kernel(x)
        if self.mode == "int8":  # per-output-channel scales commute with the matmul
            return F.linear(x, self.qweight.to(x.dtype)) * self.scales
        return x @ self.dequantize()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, self.in_features).to(self.dtype).contiguous()  # (M, in)
        if torch.is_grad_enabled() and x.requires_grad:
            y = _QuantizedMatmul.apply(x2, self)
        else:
            y = self._matmul(x2)  # (M, out)
        if self.bias is not None:
            y = y + self.bias
        return y.to(x.dtype).view(*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        group = f", group_size={self.group_size}" if self.mode == "int4" else ""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, mode={self.mode}{group}, dtype={self.dtype}"
        )


class _QuantizedMatmul(torch.autograd.Function):
    """x @ W.T with a gradient for x only: the quantized weight is a constant."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: torch.Tensor, module: QuantizedLinear) -> torch.Tensor:
        ctx.module = module
        return module._matmul(x)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        w_t = ctx.module.dequantize()  # (in, out)
        return grad.to(w_t.dtype) @ w_t.t(), None


def _quantize_int8(w: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, K) float32 -> q int8 (rows, K), scales (rows,) in `dtype`. The scale is rounded to `dtype`
    before dividing, so q absorbs the rounding instead of every weight of the row carrying it. Few
    passes over the chunk: loading time is mostly this (docs/model.md)."""
    R, K = w.shape
    lo, hi = w.view(R, -1, 64 if K % 64 == 0 else K).aminmax(dim=-1)  # grouped: faster than whole rows
    s = (torch.maximum(-lo, hi).amax(-1) / 127).clamp(min=1e-12).to(dtype)  # (rows,)
    q = (w * (1 / s.float())[:, None]).round_().clamp_(-127, 127).to(torch.int8)
    return q, s


def _quantize_int4(w: torch.Tensor, G: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, K) float32 -> q uint8 values 0..15 (rows, K) and scales_and_zeros (K/G, rows, 2) in
    `dtype`, with w ~ (q - 8) * s + z per group of G inputs (min/max range; s and z rounded first)."""
    R, K = w.shape
    g = w.view(R, K // G, G)
    lo, hi = g.aminmax(dim=-1)  # (R, K/G)
    s = ((hi - lo) / 15).clamp(min=1e-12).to(dtype)
    z = (lo + 8 * s.float()).to(dtype)
    inv = 1 / s.float()
    q = torch.addcmul((8 - z.float() * inv)[..., None], g, inv[..., None])  # (w - z) / s + 8
    q = q.round_().clamp_(0, 15).to(torch.uint8)
    sz = torch.stack([s, z], dim=-1).transpose(0, 1).contiguous()  # (K/G, R, 2)
    return q.view(R, K), sz


def check_int4_shape(in_features: int, out_features: int, group_size: int) -> None:
    """The int4 kernels' shape rules (CPU: out % 16, in % group; CUDA tiles: out % 8, in % 128)."""
    if group_size not in (32, 64, 128, 256) or in_features % group_size or out_features % 16:
        raise ValueError(
            f"int4 needs group_size in 32/64/128/256 dividing in_features ({in_features}) and "
            f"out_features ({out_features}) a multiple of 16"
        )


@functools.cache
def _int4_cpu_block() -> int | None:
    """Rows per block of `_convert_weight_to_int4pack_for_cpu`'s layout on this CPU (64 with AVX-512,
    32 with AVX2), checked by packing and unpacking a probe both ways; None when the layout is not the
    one `_pack`/`_unpack` know (then PyTorch packs, and dequantizing goes through the kernel: slower)."""
    cap = torch.backends.cpu.get_cpu_capability()
    block = 64 if cap.startswith("AVX512") else 32 if cap == "AVX2" else None
    if block is not None:
        probe = torch.randint(0, 16, (2 * block + 16, 64), generator=torch.Generator().manual_seed(0))
        packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(probe.to(torch.int32), 1)
        mine = _pack(probe.to(torch.uint8), block)
        back = _unpack(packed, *probe.shape, block)
        if torch.equal(mine, packed) and torch.equal(back.t().long(), probe):
            return block
    log.warning("unknown int4 CPU packing on %s: int4 prompts dequantize through the kernel (slow)", cap)
    return None


def pack_int4_cpu(q: torch.Tensor) -> torch.Tensor:
    """(N, K) uint8 values 0..15 -> PyTorch's CPU int4 layout (N, K/2) uint8, in a few vectorized
    passes (PyTorch's own packing reads int32 column by column)."""
    block = _int4_cpu_block()
    if block is None:
        return torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.to(torch.int32), 1)
    return _pack(q, block)


def _pack(q: torch.Tensor, block: int) -> torch.Tensor:
    """Inverse of `_unpack` (see there for the layout)."""
    N, K = q.shape
    full = N // block
    b = q[: full * block].view(full, block, K).transpose(1, 2)  # (blocks, K, block)
    parts = [(b[..., : block // 2] | b[..., block // 2 :] << 4).reshape(-1)]
    if full * block < N:  # rows n, n+1 of the last partial block share a byte
        r = q[full * block :].view(-1, 2, K)  # (rest/2, 2, K)
        parts.append((r[:, 0] | r[:, 1] << 4).t().reshape(-1))  # k-major
    return torch.cat(parts).view(N, K // 2)


def unpack_int4_cpu(
    packed: torch.Tensor, N: int, K: int, dtype: torch.dtype, signed: bool = False
) -> torch.Tensor | None:
    """The 0..15 values (`signed`: minus 8) of a CPU-packed int4 weight, transposed: (K, N) in `dtype`;
    None if the layout on this CPU is unknown."""
    block = _int4_cpu_block()
    return None if block is None else _unpack(packed, N, K, block, dtype, signed)


def _unpack(
    packed: torch.Tensor, N: int, K: int, block: int, dtype: torch.dtype = torch.uint8, signed: bool = False
) -> torch.Tensor:
    """Inverse of PyTorch's CPU int4 packing (aten/src/ATen/native/cpu/int4mm_kernel.cpp,
    `weight_to_int4pack_kernel`): blocks of `block` rows, each stored k-major as (K, block/2) bytes
    whose low nibbles are the block's first half of rows and high nibbles its second half; a last
    partial block (16, 32 or 48 rows) stores rows n, n+1 as the low, high nibble of one byte."""
    flat = packed.view(-1)
    full = N // block
    out = torch.empty(K, N, dtype=dtype, device=packed.device)

    def nibbles(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lo, hi = p & 15, p >> 4
        if signed:  # q - 8 wraps around in uint8 and reads -8..7 as int8: cheaper than a pass in bf16
            lo, hi = lo.sub_(8).view(torch.int8), hi.sub_(8).view(torch.int8)
        return lo, hi

    if full:
        lo, hi = nibbles(flat[: full * K * block // 2].view(full, K, block // 2))
        o = out[:, : full * block].view(K, full, block)
        o[..., : block // 2].copy_(lo.transpose(0, 1))
        o[..., block // 2 :].copy_(hi.transpose(0, 1))
    rest = N - full * block
    if rest:
        lo, hi = nibbles(flat[full * K * block // 2 :].view(K, rest // 2))
        o = out[:, full * block :].view(K, rest // 2, 2)
        o[..., 0].copy_(lo)
        o[..., 1].copy_(hi)
    return out


def quantize_model(
    model: nn.Module,
    mode: str,
    dtype: torch.dtype,
    group_size: int = INT4_GROUP_SIZE,
    device: torch.device | str | None = None,
) -> list[str]:
    """Replace every block linear (`QUANTIZED_LINEARS`) with an empty `QuantizedLinear` of the same name,
    and `lm_head` with an int8 one (`LM_HEAD_MODE`; this unties it from the embeddings), on `device`
    (the loader fills them, `set_weight`); returns the replaced module names."""
    if mode not in MODES:
        raise ValueError(f"quantize must be one of {MODES}, got {mode!r}")
    replaced = []
    for name, module in list(model.named_modules()):
        if not isinstance(module, nn.Linear):
            continue
        if name == "lm_head":
            this_mode = LM_HEAD_MODE
        elif name.rsplit(".", 1)[-1] in QUANTIZED_LINEARS:
            this_mode = mode
        else:
            continue
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        q = QuantizedLinear(
            module.in_features,
            module.out_features,
            module.bias is not None,
            this_mode,
            int4_group(module.in_features, group_size),
            dtype,
            device,
        )
        setattr(parent, attr, q)
        replaced.append(name)
    return replaced
