"""The server's settings: one dataclass, filled from flags (``stackcoder serve --help``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

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
    dtype: str = "auto"  # auto: bfloat16 on CUDA, float32 on the CPU
    max_batch: int = 16  # sequences decoded together (continuous batching)
    max_queue: int = 64  # requests waiting for a slot; beyond it 503 with Retry-After
    max_new_tokens: int = 512  # the most a request may ask for
    max_input_tokens: int | None = None  # default: the model's context minus max_new_tokens
    index: str | None = None  # a `stackcoder index build` directory: /overlap, /search, attribution
    timeout_s: float = 120.0  # a request still unfinished after this is ended (finish_reason "timeout")

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.max_queue < 0 or self.max_new_tokens < 1 or self.timeout_s <= 0:
            raise ValueError("max_batch and max_new_tokens must be >= 1, max_queue >= 0, timeout_s > 0")
