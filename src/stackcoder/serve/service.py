"""The completion logic every API shape shares, with no routing: prompts (FIM and repository-level,
built from the tokenizer's own special tokens), limits, sampling parameters, and running a request
on the engine. Routes turn a ``ServeError`` into a status code and a message."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import torch

from stackcoder.errors import UserError
from stackcoder.model.generate import Collected, Piece, SamplingParams
from stackcoder.model.hf import DTYPES, load_model, pick_device
from stackcoder.serve.config import ServeConfig
from stackcoder.serve.engine import Engine, Handle, QueueFull
from stackcoder.tokenizer import prompts
from stackcoder.tokenizer.files import encode, load_tokenizer


class ServeError(Exception):
    def __init__(self, status: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


@dataclass
class Result:
    text: str
    token_ids: list[int]
    logprobs: list[float]
    finish_reason: str  # eos, stop, length, timeout
    prompt_tokens: int
    seconds: float


class CompletionService:
    def __init__(self, config: ServeConfig):
        self.config = config
        device = pick_device(config.device)
        dtype = (
            None if config.dtype == "auto" and device == "cpu" else DTYPES.get(config.dtype, torch.bfloat16)
        )
        self.model = load_model(config.model, dtype=dtype, device=device, quantize=config.quantize)
        self.tokenizer = load_tokenizer(config.model)
        self.model_id = config.model_id or Path(config.model).resolve().name
        if config.adapter:
            from stackcoder.model.lora import adapter_name, apply_adapter

            self.model = apply_adapter(self.model, config.adapter)
            self.model_id = config.model_id or f"{self.model_id}+{adapter_name(config.adapter)}"
        self.context = self.model.config.max_position_embeddings
        # a request may ask for up to max_new_tokens, and its prompt + that must fit the context
        self.max_new = min(config.max_new_tokens, self.context - 1)
        self.max_input = min(config.max_input_tokens or self.context - 1, self.context - 1)
        self.engine = Engine(
            self.model,
            self.tokenizer,
            max_batch=config.max_batch,
            max_queue=config.max_queue,
            max_len=self.context,
            prefix_cache_bytes=config.prefix_cache_mb * 2**20,
        )

    def close(self) -> None:
        self.engine.shutdown()

    # ---- prompts -------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return encode(self.tokenizer, text)

    def fim_prompt(self, prefix: str, suffix: str, path: str | None = None) -> list[int]:
        try:
            return prompts.fim_ids(self.tokenizer, prefix, suffix, path, spm=self.config.fim_order == "spm")
        except UserError as e:
            raise ServeError(400, str(e)) from None

    def repo_prompt(
        self, repo: str, files: list[tuple[str, str]], path: str, prefix: str, suffix: str
    ) -> list[int]:
        try:
            return prompts.repo_fim_ids(
                self.tokenizer, repo, files, path, prefix, suffix, spm=self.config.fim_order == "spm"
            )
        except UserError as e:
            raise ServeError(400, str(e)) from None

    # ---- limits and parameters -----------------------------------------------------------------
    def check(self, prompt_ids: list[int], max_new_tokens: int) -> None:
        if not prompt_ids:
            raise ServeError(422, "the prompt is empty: give at least one character of input")
        if max_new_tokens > self.max_new:
            raise ServeError(
                422,
                f"max_new_tokens {max_new_tokens} exceeds this server's limit {self.max_new}",
            )
        if len(prompt_ids) > self.max_input:
            raise ServeError(
                413, f"the prompt has {len(prompt_ids)} tokens; this server accepts at most {self.max_input}"
            )
        if len(prompt_ids) + max_new_tokens > self.context:
            raise ServeError(
                422,
                f"prompt ({len(prompt_ids)} tokens) + max_new_tokens ({max_new_tokens}) exceed the model's "
                f"context of {self.context} tokens",
            )

    @staticmethod
    def params(
        max_new_tokens: int,
        temperature: float | None,
        top_p: float | None,
        top_k: int | None,
        stop: list[str] | None,
        seed: int | None,
        do_sample: bool = True,
    ) -> SamplingParams:
        t = temperature if (do_sample and temperature is not None) else 0.0
        if t < 1e-4:  # below this, logits / t overflows to inf: the same as greedy
            t = 0.0
        try:
            return SamplingParams(
                max_new_tokens=max_new_tokens,
                temperature=t,
                top_p=top_p if top_p is not None else 1.0,
                top_k=top_k or 0,
                stop=[s for s in (stop or []) if s],
                seed=seed,
            )
        except UserError as e:
            raise ServeError(422, str(e)) from None

    # ---- running -------------------------------------------------------------------------------
    def start(self, prompt_ids: list[int], params: SamplingParams) -> Handle:
        self.check(prompt_ids, params.max_new_tokens)
        try:
            return self.engine.submit(prompt_ids, params, self.config.timeout_s)
        except QueueFull as e:
            raise ServeError(503, f"the server is busy ({e}); retry shortly", retry_after=1) from None

    @staticmethod
    async def pieces(handle: Handle) -> AsyncIterator[Piece]:
        """The pieces of a started request; it is cancelled if the consumer stops early (a streaming
        client that disconnects). Start with ``start`` first, so errors come before any byte is sent."""
        try:
            async for piece in handle.pieces():
                yield piece
        finally:
            handle.cancel()

    async def collect(self, handle: Handle) -> Collected:
        """All the pieces of a started request, added up."""
        out = Collected()
        async for piece in self.pieces(handle):
            out.add(piece)
        return out

    async def complete(self, prompt_ids: list[int], params: SamplingParams) -> Result:
        start = time.perf_counter()
        c = await self.collect(self.start(prompt_ids, params))
        seconds = time.perf_counter() - start
        return Result(c.text, c.token_ids, c.logprobs, c.finish_reason, len(prompt_ids), seconds)
