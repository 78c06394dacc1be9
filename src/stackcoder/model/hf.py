"""Checkpoints in the Hugging Face layout, local directories only (recipe.md §3).

A directory holds `config.json`, `model.safetensors` (or `model-0000i-of-0000n.safetensors` shards with
`model.safetensors.index.json` above a size limit), `generation_config.json` and the tokenizer files.
Module names equal checkpoint names, so loading is a key-by-key copy with shape checks: a missing or
extra tensor is an error, never skipped. Nothing is downloaded: a missing file is a `UserError`.
"""

from __future__ import annotations

import json
import math
import mmap
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from stackcoder.errors import UserError
from stackcoder.model import quant
from stackcoder.model.config import Starcoder2Config
from stackcoder.model.model import Starcoder2

CONFIG = "config.json"
GENERATION_CONFIG = "generation_config.json"
WEIGHTS = "model.safetensors"
INDEX = "model.safetensors.index.json"
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
)
# transformers' save_pretrained default is "5GB" in 4.x; keep shards that size so hub tools cope
DEFAULT_MAX_SHARD_BYTES = 5 * 10**9
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def pick_device(device: str = "auto") -> str:
    """``device``, or for "auto" cuda when a GPU is visible, else cpu (serve, eval, train)."""
    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def _checkpoint_dir(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise UserError(
            f"{path}: no such directory; a model is a local Hugging Face-layout directory "
            "(config.json + model.safetensors), nothing is downloaded"
        )
    if not (path / CONFIG).is_file():
        raise UserError(f"{path}: missing {CONFIG}; expected a Hugging Face-layout checkpoint")
    return path


def load_config(path: str | Path) -> Starcoder2Config:
    path = _checkpoint_dir(path)
    try:
        return Starcoder2Config.from_hf_dict(json.loads((path / CONFIG).read_text()))
    except (ValueError, TypeError) as e:  # JSONDecodeError is a ValueError
        raise UserError(f"{path / CONFIG}: {e}") from e


def load_generation_config(path: str | Path) -> dict:
    """`generation_config.json` if present, else the ids from `config.json`."""
    path = _checkpoint_dir(path)
    gen = path / GENERATION_CONFIG
    if gen.is_file():
        return json.loads(gen.read_text())
    config = json.loads((path / CONFIG).read_text())
    return {k: config[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id") if k in config}


def eos_token_ids(path: str | Path) -> list[int]:
    eos = load_generation_config(path).get("eos_token_id")
    if eos is None:
        return []
    return list(eos) if isinstance(eos, list) else [eos]


def weight_files(path: Path) -> dict[str, Path]:
    """Tensor name -> file holding it."""
    if (path / WEIGHTS).is_file():
        with safe_open(path / WEIGHTS, framework="pt") as f:
            return {k: path / WEIGHTS for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
    if (path / INDEX).is_file():
        weight_map = json.loads((path / INDEX).read_text())["weight_map"]
        files = {name: path / file for name, file in weight_map.items()}
        for file in sorted(set(files.values())):
            if not file.is_file():
                raise UserError(f"{path}: {INDEX} lists {file.name}, which is missing")
        return files
    if any(path.glob("*.bin")):
        raise UserError(f"{path}: only safetensors weights are supported, found PyTorch .bin files")
    raise UserError(f"{path}: missing {WEIGHTS} (or {INDEX} and its shards)")


def load_model(
    path: str | Path,
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device = "cpu",
    quantize: str | None = None,
    group_size: int = quant.INT4_GROUP_SIZE,
    available_bytes: int | None = None,
) -> Starcoder2:
    """A Starcoder2 with the checkpoint's weights in eval mode: in `dtype` (default: as stored; bfloat16
    when quantizing), with the blocks' linears int8 or int4 when `quantize` says so (model/quant.py).

    The model is built on the meta device and each tensor goes from the memory-mapped safetensors file
    straight into its final dtype or quantized form, a chunk of rows at a time, the mapped pages of a
    chunk dropped once read: no full-precision copy of the model ever exists, so peak memory is about
    the loaded weights (docs/model.md, "Loading"). Before anything is read, the memory the result needs
    is compared with `available_bytes` (default: what the OS says is available on `device`) and a
    `UserError` names the dtype/quantization options that would fit.
    """
    path = _checkpoint_dir(path)
    config = load_config(path)
    device = torch.device(device)
    if quantize is not None and quantize not in quant.MODES:
        raise UserError(f"--quantize must be one of {', '.join(quant.MODES)}, got {quantize!r}")
    if quantize is not None and dtype is None:
        dtype = torch.bfloat16  # the kernels compute in bf16; an fp32 checkpoint's dtype would be slower
    tensors = tensor_index(path)
    with torch.device("meta"):
        model = Starcoder2(config)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if config.tie_word_embeddings:
        expected.pop("lm_head.weight")
    missing, unexpected = sorted(expected.keys() - tensors.keys()), sorted(tensors.keys() - expected.keys())
    if config.tie_word_embeddings and "lm_head.weight" in unexpected:
        unexpected.remove("lm_head.weight")  # some exporters write the tied copy too; checked below
    if missing or unexpected:
        raise UserError(
            f"{path}: checkpoint does not match config.json: missing {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
            f"{' ...' if len(unexpected) > 5 else ''}"
        )
    for name, info in tensors.items():
        want = expected.get(name, expected.get("model.embed_tokens.weight"))  # a tied lm_head: embeddings'
        if info.shape != want:
            raise UserError(f"{info.file}: {name} has shape {info.shape}, config.json implies {want}")
    check_memory(path, config, tensors, dtype, quantize, group_size, device, available_bytes)
    quantized = set()
    if quantize is not None:  # empty quantized modules on `device` (not touched yet), filled below
        try:
            quantized = set(quant.quantize_model(model, quantize, dtype, group_size, device=device))
        except ValueError as e:
            raise UserError(f"{path}: cannot quantize to {quantize}: {e}") from None
    state = _read_tensors(
        model, tensors, quantized - {"lm_head"} if config.tie_word_embeddings else quantized, dtype, device
    )
    tied = state.pop("_tied_lm_head", None)
    embeddings = state["model.embed_tokens.weight"]
    if tied is not None and not torch.equal(tied.to(embeddings.dtype), embeddings):
        raise UserError(f"{path}: tie_word_embeddings is true but lm_head.weight differs from the embeddings")
    if config.tie_word_embeddings and "lm_head" in quantized:
        model.lm_head.set_weight(embeddings)  # an int8 copy of the (tied) embeddings
    elif config.tie_word_embeddings:
        state["lm_head.weight"] = embeddings
    for name in quantized:
        module = model.get_submodule(name)
        state.update({f"{name}.{k}": v for k, v in module.named_buffers()})
    model.load_state_dict(state, strict=True, assign=True)
    if config.tie_word_embeddings and not quantized:  # assign=True made two Parameters; make them one
        model.lm_head.weight = model.model.embed_tokens.weight
    model.quantize = quantize  # what was asked, for reports (eval, benchmarks)
    return model.eval()


@dataclass(frozen=True)
class TensorInfo:
    """Where a tensor lies in a safetensors file: bytes [start, end) of `file`."""

    file: Path
    dtype: torch.dtype
    shape: tuple[int, ...]
    start: int
    end: int


SAFETENSORS_DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}


def tensor_index(path: Path) -> dict[str, TensorInfo]:
    """Every tensor of a checkpoint directory, from the safetensors headers alone (nothing is read).

    The format: an 8-byte little-endian header length, a JSON header mapping names to dtype, shape and
    [begin, end) byte offsets from the end of the header, then the data."""
    index = {}
    for file in sorted(set(weight_files(path).values())):
        with open(file, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(n))
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            if entry["dtype"] not in SAFETENSORS_DTYPES:
                raise UserError(f"{file}: {name} is {entry['dtype']}; only F32, BF16 and F16 weights load")
            begin, end = entry["data_offsets"]
            index[name] = TensorInfo(
                file, SAFETENSORS_DTYPES[entry["dtype"]], tuple(entry["shape"]), 8 + n + begin, 8 + n + end
            )
    return index


def _read_tensors(
    model: Starcoder2,
    tensors: dict[str, TensorInfo],
    quantized: set[str],
    dtype: torch.dtype | None,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """Each tensor converted (or quantized into its module) a chunk of rows at a time from a read-only
    mapping of its file; the pages of a chunk are dropped from this process once converted, so the
    mapping never holds more than a chunk (a shared file mapping counts in RSS while mapped)."""
    state: dict[str, torch.Tensor] = {}
    by_file: dict[Path, list[tuple[str, TensorInfo]]] = {}
    for name, info in sorted(tensors.items(), key=lambda kv: (kv[1].file, kv[1].start)):
        by_file.setdefault(info.file, []).append((name, info))
    tied = model.config.tie_word_embeddings
    for file, items in by_file.items():
        with open(file, "rb") as f:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        for name, info in items:
            src = _mapped(mm, info)
            row_bytes = (info.end - info.start) // max(1, info.shape[0]) if info.shape else 1

            def drop(
                r0: int, r1: int, mm: mmap.mmap = mm, start: int = info.start, row: int = row_bytes
            ) -> None:
                _drop_pages(mm, start + r0 * row, start + r1 * row)

            module_name = name.rsplit(".", 1)[0]
            if module_name in quantized and name.endswith(".weight"):
                model.get_submodule(module_name).set_weight(src, on_chunk=drop)
            else:
                dst = torch.empty(info.shape, dtype=dtype or info.dtype, device=device)
                if dst.dim() < 2:
                    dst.copy_(src)
                    drop(0, max(1, len(src)) if src.dim() else 1)
                else:
                    step = max(1, quant.CHUNK_BYTES // row_bytes)
                    for r in range(0, len(dst), step):
                        dst[r : r + step].copy_(src[r : r + step])
                        drop(r, r + step)
                state["_tied_lm_head" if tied and name == "lm_head.weight" else name] = dst
            del src
        mm.close()  # every tensor over it is gone (converted copies only)
    return state


def _mapped(mm: mmap.mmap, info: TensorInfo) -> torch.Tensor:
    """A tensor over the mapping (no copy); read-only memory, so torch's warning about it is silenced."""
    n = math.prod(info.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        t = torch.frombuffer(mm, dtype=info.dtype, count=n, offset=info.start) if n else torch.empty(0)
    return t.view(info.shape)


def _drop_pages(mm: mmap.mmap, start: int, end: int) -> None:
    """Unmap [start, end) from this process (the page cache keeps the file; a re-read faults it in)."""
    start = start // mmap.PAGESIZE * mmap.PAGESIZE
    end = min(end, len(mm))
    if end > start and hasattr(mm, "madvise"):
        mm.madvise(mmap.MADV_DONTNEED, start, end - start)


# beyond the weights: the interpreter and torch (~0.3 GB), a chunk being converted, KV cache, activations
RUNTIME_BYTES = 5 * 10**8


def loaded_bytes(
    config: Starcoder2Config,
    tensors: dict[str, TensorInfo],
    dtype: torch.dtype | None,
    quantize: str | None = None,
    group_size: int = quant.INT4_GROUP_SIZE,
) -> int:
    """Bytes the loaded weights take: quantized linears at their packed size (values and scales), the
    rest in `dtype` (None: as stored). A tied checkpoint's extra lm_head.weight is not kept; quantized,
    a tied model keeps its embeddings and an int8 copy as lm_head (model/quant.py)."""
    total = 0
    for name, info in tensors.items():
        if name == "lm_head.weight" and config.tie_word_embeddings:
            continue
        n = math.prod(info.shape)
        module, _, kind = name.rpartition(".")
        if quantize and kind == "weight" and module.rsplit(".", 1)[-1] in quant.QUANTIZED_LINEARS:
            total += int(n * quant.bytes_per_weight(quantize, info.shape[1], group_size))
        elif quantize and name == "lm_head.weight":
            total += int(n * quant.bytes_per_weight(quant.LM_HEAD_MODE, info.shape[1]))
        else:
            total += n * (dtype or info.dtype).itemsize
    if quantize and config.tie_word_embeddings:
        n = config.vocab_size * config.hidden_size
        total += int(n * quant.bytes_per_weight(quant.LM_HEAD_MODE, config.hidden_size))
    return total


def available_memory(device: torch.device) -> int | None:
    """Bytes that can be allocated on `device` now: CUDA's free memory, or on Linux `MemAvailable`
    capped by the cgroup's limit; None when unknown (then nothing is checked)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    try:
        meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        avail = int(meminfo["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None
    try:  # a container's limit (cgroup v2) can be far below the machine's memory
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            avail = min(avail, int(limit) - used)
    except (OSError, ValueError):
        pass
    return avail


def check_memory(
    path: Path,
    config: Starcoder2Config,
    tensors: dict[str, TensorInfo],
    dtype: torch.dtype | None,
    quantize: str | None,
    group_size: int,
    device: torch.device,
    available_bytes: int | None = None,
) -> None:
    """Refuse to load what will not fit, naming the options that would."""
    available = available_bytes if available_bytes is not None else available_memory(device)
    if available is None:
        return
    weights = loaded_bytes(config, tensors, dtype, quantize, group_size)
    if weights + RUNTIME_BYTES <= available:
        return
    options = []
    for flag, dt, q in (
        ("--dtype bfloat16", torch.bfloat16, None),
        ("--quantize int8", torch.bfloat16, "int8"),
        ("--quantize int4", torch.bfloat16, "int4"),
    ):
        n = loaded_bytes(config, tensors, dt, q, group_size)
        if n < weights and n + RUNTIME_BYTES <= available:
            options.append(f"{flag} (~{_size(n)})")
    stored = "/".join(sorted({str(t.dtype).removeprefix("torch.") for t in tensors.values()}))
    what = quantize or str(dtype).removeprefix("torch.") if dtype or quantize else stored
    fix = f"use {' or '.join(options)}" if options else "no dtype or quantization fits: free memory first"
    raise UserError(
        f"{path}: the {what} weights take ~{_size(weights)} (+{_size(RUNTIME_BYTES)} to run) and "
        f"{_size(available)} is available on {device.type}; {fix}"
    )


def _size(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 10**9 else f"{n / 1e6:.0f} MB"


def save_model(
    model: Starcoder2,
    path: str | Path,
    *,
    tokenizer_dir: str | Path | None = None,
    dtype: torch.dtype | None = None,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
) -> Path:
    """Write `model` in the Hugging Face layout that `Starcoder2ForCausalLM.from_pretrained` loads.

    Old weight files in `path` are removed first, so a single file and an index never coexist.
    """
    return save_state(
        model.state_dict(),
        model.config,
        path,
        tokenizer_dir=tokenizer_dir,
        dtype=dtype,
        max_shard_bytes=max_shard_bytes,
    )


def save_state(
    state: dict[str, torch.Tensor],
    config: Starcoder2Config,
    path: str | Path,
    *,
    tokenizer_dir: str | Path | None = None,
    dtype: torch.dtype | None = None,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
) -> Path:
    """`save_model` for a state dict (e.g. gathered from FSDP shards) and its config."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(dtype or v.dtype).contiguous().cpu() for k, v in state.items()}
    if config.tie_word_embeddings:
        state.pop("lm_head.weight", None)  # the released tied checkpoints have no lm_head.weight
    stored_dtype = next(iter(state.values())).dtype
    for old in [*path.glob("model*.safetensors"), path / INDEX]:
        old.unlink(missing_ok=True)
    shards = _shard(state, max_shard_bytes)
    if len(shards) == 1:
        save_file(shards[0], path / WEIGHTS, metadata={"format": "pt"})
    else:
        weight_map = {}
        for i, shard in enumerate(shards, 1):
            name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
            save_file(shard, path / name, metadata={"format": "pt"})
            weight_map.update(dict.fromkeys(shard, name))
        total = sum(t.numel() * t.element_size() for t in state.values())
        index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
        (path / INDEX).write_text(json.dumps(index, indent=2) + "\n")
    dtype_name = str(stored_dtype).removeprefix("torch.")
    hf_config = {**config.to_hf_dict(), "torch_dtype": dtype_name, "dtype": dtype_name}
    (path / CONFIG).write_text(json.dumps(hf_config, indent=2, sort_keys=True) + "\n")
    generation = {"bos_token_id": config.bos_token_id, "eos_token_id": config.eos_token_id}
    (path / GENERATION_CONFIG).write_text(json.dumps(generation, indent=2) + "\n")
    if tokenizer_dir is not None:
        copy_tokenizer(tokenizer_dir, path)
    return path


def copy_tokenizer(src: str | Path, dst: str | Path) -> list[str]:
    src = Path(src)
    found = [name for name in TOKENIZER_FILES if (src / name).is_file()]
    if not found:
        raise UserError(f"{src}: no tokenizer files ({', '.join(TOKENIZER_FILES)})")
    if Path(src).resolve() != Path(dst).resolve():
        for name in found:
            shutil.copyfile(src / name, Path(dst) / name)
    return found


def _shard(state: dict[str, torch.Tensor], max_bytes: int) -> list[dict[str, torch.Tensor]]:
    """Greedy split in checkpoint order; a tensor larger than the limit gets a shard of its own."""
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, t in state.items():
        n = t.numel() * t.element_size()
        if shards[-1] and size + n > max_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = t
        size += n
    return shards
