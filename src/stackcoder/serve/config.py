"""The server's settings: one dataclass, filled from flags (``stackcoder serve --help``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from stackcoder.errors import UserError

API_KEY_ENV = "STACKCODER_API_KEY"


@dataclass
class ServeConfig:
    model: str  # a Hugging Face-layout StarCoder2 checkpoint directory (ours or a released one)
    model_id: str | None = None  # the name /v1/models and /info report; default: the directory's name
    host: str = "127.0.0.1"  # loopback only unless asked: the API runs code-generating models
    port: int = 8000
    api_key: str | None = field(default_factory=lambda: os.environ.get(API_KEY_ENV) or None)
    cors_origins: list[str] = field(default_factory=list)
    device: str = "auto"  # auto: cuda when available, else cpu
    dtype: str = "auto"  # auto: bfloat16 on CUDA or when quantizing, else as stored on the CPU
    quantize: str | None = None  # "int8" / "int4": weight-only quantized linears (model/quant.py)
    # a LoRA adapter for `model` in PEFT's format (`stackcoder finetune`'s RUN/adapter); the default
    # model_id names it: "<model>+<adapter>"
    adapter: str | None = None
    max_batch: int = 16  # sequences decoded together (continuous batching)
    max_queue: int = 64  # requests waiting for a slot; beyond it 503 with Retry-After
    max_new_tokens: int = 512  # the most a request may ask for
    max_input_tokens: int | None = None  # default (and at most): the model's context minus one
    index: str | None = None  # a `stackcoder index build` directory: /overlap, /search, attribution
    # the membership rule's threshold for /overlap and attribution (None: the index's default, 1e-6)
    index_max_chance: float | None = None
    timeout_s: float = 120.0  # a request still unfinished after this is ended (finish_reason "timeout")
    # keys and values of recent prompts, reused when a prompt starts the same (editors resend their
    # window); 1 GiB holds ~34k positions of the 3B in bfloat16 (30 KiB each). 0: off
    prefix_cache_mb: int = 1024
    # the order of FIM prompts the server builds (OpenAI `suffix`, /infill): "spm" puts the suffix
    # first, so an edit at the cursor leaves the rest cached (docs/serve.md measures it); or "psm"
    fim_order: str = "spm"

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.max_queue < 0 or self.max_new_tokens < 1 or self.timeout_s <= 0:
            raise UserError("max_batch and max_new_tokens must be >= 1, max_queue >= 0, timeout_s > 0")
        if self.quantize not in (None, "int8", "int4"):
            raise UserError(f"quantize must be int8 or int4, got {self.quantize!r}")
        if self.prefix_cache_mb < 0 or self.fim_order not in ("spm", "psm"):
            raise UserError("prefix_cache_mb must be >= 0 (0: off) and fim_order one of spm, psm")
        if self.index_max_chance is not None and not self.index:
            raise UserError("--index-max-chance applies to a dataset index: give --index DIR too")
