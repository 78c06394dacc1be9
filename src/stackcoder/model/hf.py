"""Checkpoints in the Hugging Face layout, local directories only (recipe.md §3).

A directory holds `config.json`, `model.safetensors` (or `model-0000i-of-0000n.safetensors` shards with
`model.safetensors.index.json` above a size limit), `generation_config.json` and the tokenizer files.
Module names equal checkpoint names, so loading is a key-by-key copy with shape checks: a missing or
extra tensor is an error, never skipped. Nothing is downloaded: a missing file is a `UserError`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from stackcoder.errors import UserError
from stackcoder.model.config import Starcoder2Config
from stackcoder.model.model import Starcoder2

if TYPE_CHECKING:
    from tokenizers import Tokenizer

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
    path: str | Path, *, dtype: torch.dtype | None = None, device: str | torch.device = "cpu"
) -> Starcoder2:
    """A Starcoder2 with the checkpoint's weights, in `dtype` (default: as stored), in eval mode."""
    path = _checkpoint_dir(path)
    config = load_config(path)
    files = weight_files(path)
    with torch.device("meta"):
        model = Starcoder2(config)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    if config.tie_word_embeddings:
        expected.pop("lm_head.weight")
    missing, unexpected = sorted(expected.keys() - files.keys()), sorted(files.keys() - expected.keys())
    if config.tie_word_embeddings and "lm_head.weight" in unexpected:
        unexpected.remove("lm_head.weight")  # some exporters write the tied copy too; checked below
    if missing or unexpected:
        raise UserError(
            f"{path}: checkpoint does not match config.json: missing {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
            f"{' ...' if len(unexpected) > 5 else ''}"
        )
    state: dict[str, torch.Tensor] = {}
    for file in sorted(set(files.values())):
        with safe_open(file, framework="pt", device=str(device)) as f:
            for name in f.keys():  # noqa: SIM118
                t = f.get_tensor(name)
                if name == "lm_head.weight" and config.tie_word_embeddings:
                    state["_tied_lm_head"] = t
                    continue
                if tuple(t.shape) != tuple(expected[name]):
                    raise UserError(
                        f"{file}: {name} has shape {tuple(t.shape)}, config.json implies "
                        f"{tuple(expected[name])}"
                    )
                state[name] = t.to(dtype) if dtype is not None else t
    tied = state.pop("_tied_lm_head", None)
    if tied is not None and not torch.equal(
        tied.to(state["model.embed_tokens.weight"]), state["model.embed_tokens.weight"]
    ):
        raise UserError(f"{path}: tie_word_embeddings is true but lm_head.weight differs from the embeddings")
    if config.tie_word_embeddings:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    model.load_state_dict(state, strict=True, assign=True)
    if config.tie_word_embeddings:  # assign=True made two Parameters; make them one again
        model.lm_head.weight = model.model.embed_tokens.weight
    return model.eval()


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


def load_tokenizer(path: str | Path) -> Tokenizer:
    """The `tokenizers.Tokenizer` of a checkpoint directory (its tokenizer.json)."""
    from tokenizers import Tokenizer

    file = Path(path) / "tokenizer.json"
    if not file.is_file():
        raise UserError(f"{path}: missing tokenizer.json (needed to turn text into tokens)")
    return Tokenizer.from_file(str(file))
