"""The generation engine behind every route: continuous batching on a slotted KV cache.

One thread owns the model. Each iteration it admits waiting requests into free slots (a prefill
per request, its keys and values copied into the slot; with a prefix cache, only the tokens after
the longest prefix already cached are prefilled, see ``prefix_cache.py``), then runs **one decode
step for every active sequence together**, hands each its token, and retires the ones that ended
(end token, stop sequence, length, timeout, or a client that went away), so a new request joins at
the next step instead of waiting for a whole batch to finish. The queue in front is bounded: past
``max_queue`` waiting requests ``submit`` raises ``QueueFull`` (the routes answer 503).

Nothing here imports FastAPI: routes call ``submit`` and read the ``Handle``'s async iterator.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import torch
from tokenizers import Tokenizer

from stackcoder.model.generate import Piece, SamplingParams, TextState, sample, take
from stackcoder.model.model import Starcoder2
from stackcoder.serve.prefix_cache import PrefillCache, PrefixCache
from stackcoder.tokenizer.files import stop_token_ids


class QueueFull(Exception):
    """More requests are waiting than the engine accepts; retry later."""


class SlotCache:
    """Keys and values of up to ``max_batch`` sequences, each in its own row (slot) with its own
    length: one decode step appends one token to each of the first ``n`` rows. A row is a ring of
    ``min(window, max_len)`` columns, column ``p % capacity`` holding position ``p``, as in
    ``KVCache``. All layers share one tensor, so loading or moving a row is one copy, not one per layer."""

    def __init__(self, model: Starcoder2, max_batch: int, max_len: int):
        cfg = model.config
        p = next(model.parameters())
        W = cfg.sliding_window
        self.capacity = max_len if W is None else min(W, max_len)
        shape = (cfg.num_hidden_layers, max_batch, cfg.num_key_value_heads, self.capacity, cfg.head_dim)
        self.k = torch.zeros(shape, dtype=p.dtype, device=p.device)  # (layers, rows, n_kv, capacity, hd)
        self.v = torch.zeros(shape, dtype=p.dtype, device=p.device)
        self.valid = torch.zeros(max_batch, self.capacity, dtype=torch.bool, device=p.device)
        self.length = torch.zeros(max_batch, dtype=torch.long, device=p.device)
        self.n = 0  # rows taking part in the next step
        self._cols: torch.Tensor | None = None
        self._span = self.capacity

    def load(self, row: int, prefilled: PrefillCache) -> None:
        """Put a prefilled prompt (all N positions, in order) into ``row``: its last ``capacity``
        positions, each at column ``p % capacity``."""
        N, cap = prefilled.k.shape[2], self.capacity
        if cap >= N:
            self.k[:, row, :, :N] = prefilled.k
            self.v[:, row, :, :N] = prefilled.v
        else:  # the ring has wrapped: position N - cap sits at column s, the newest just before it
            s = N % cap
            self.k[:, row, :, s:] = prefilled.k[:, :, N - cap : N - s]
            self.v[:, row, :, s:] = prefilled.v[:, :, N - cap : N - s]
            self.k[:, row, :, :s] = prefilled.k[:, :, N - s :]
            self.v[:, row, :, :s] = prefilled.v[:, :, N - s :]
        self.valid[row] = False
        self.valid[row, : min(N, cap)] = True
        self.length[row] = N

    def move(self, src: int, dst: int) -> None:
        self.k[:, dst] = self.k[:, src]
        self.v[:, dst] = self.v[:, src]
        self.valid[dst] = self.valid[src]
        self.length[dst] = self.length[src]

    # the model's Cache protocol, for a one-token step of rows [0, n)
    def step(self, attention_mask: torch.Tensor | None, T: int) -> tuple[torch.Tensor, torch.Tensor]:
        assert T == 1, "the slot cache takes decode steps only; prompts are prefilled with PrefillCache"
        n = self.n
        pos = self.length[:n, None].clone()  # (n, 1)
        self._cols = self.length[:n] % self.capacity
        rows = torch.arange(n, device=pos.device)
        self.valid[rows, self._cols] = True
        self.length[:n] += 1
        # columns past the longest row were never written (until a row wraps the ring): skip them
        self._span = min(self.capacity, int(self.length[:n].max()))
        return pos, self.valid[
            :n, None, None, : self._span
        ]  # (n, 1, 1, span): all valid columns are in the window

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.n
        rows = torch.arange(n, device=k.device)
        self.k[layer][rows, :, self._cols] = k[:, :, 0]
        self.v[layer][rows, :, self._cols] = v[:, :, 0]
        return self.k[layer][:n, :, : self._span], self.v[layer][:n, :, : self._span]


@dataclass
class Handle:
    """One request in the engine: its output arrives as ``Piece``s through ``pieces()``."""

    prompt_ids: list[int]
    params: SamplingParams
    deadline: float
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancelled: bool = False
    generator: torch.Generator | None = None
    state: TextState | None = None
    generated: int = 0

    def cancel(self) -> None:
        """Stop generating (the client went away); the slot is freed at the next step."""
        self.cancelled = True

    async def pieces(self) -> AsyncIterator[Piece]:
        while True:
            piece = await self.queue.get()
            if isinstance(piece, BaseException):
                raise piece
            yield piece
            if piece.finish_reason is not None:
                return

    def _put(self, item: Piece | BaseException) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, item)


class Engine:
    def __init__(
        self,
        model: Starcoder2,
        tokenizer: Tokenizer,
        *,
        max_batch: int,
        max_queue: int,
        max_len: int,
        prefix_cache_bytes: int = 0,
    ):
        """``prefix_cache_bytes``: memory for the keys and values of recent prompts (0: no reuse)."""
        self.model, self.tokenizer = model.eval(), tokenizer
        self.max_batch, self.max_queue, self.max_len = max_batch, max_queue, max_len
        self.stop_ids = set(stop_token_ids(tokenizer))
        self.cache = SlotCache(model, max_batch, max_len)
        self.prefix_cache = PrefixCache(prefix_cache_bytes)
        self.prefilled_tokens = 0  # prompt tokens run through the model (the rest came from the cache)
        self.rows: list[Handle] = []  # row i of the cache belongs to rows[i]
        self.next_tokens: list[int] = []
        self.waiting: collections.deque[Handle] = collections.deque()
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.running = True
        self.steps = 0  # decode steps run (for /info and tests)
        self.max_rows_seen = 0  # the largest batch one step has decoded
        self.thread = threading.Thread(target=self._run, name="stackcoder-engine", daemon=True)
        self.thread.start()

    def submit(self, prompt_ids: Sequence[int], params: SamplingParams, timeout_s: float) -> Handle:
        """Queue a request; raises ``QueueFull`` when ``max_queue`` requests already wait."""
        handle = Handle(list(prompt_ids), params, time.monotonic() + timeout_s, asyncio.get_running_loop())
        if params.temperature > 0:
            handle.generator = torch.Generator(device=self.cache.valid.device)
            # any integer a client sends is a valid seed: torch takes 64 bits
            handle.generator.manual_seed((params.seed if params.seed is not None else torch.seed()) % 2**63)
        handle.state = TextState(self.tokenizer, params.stop)
        with self.lock:
            if len(self.waiting) >= self.max_queue:
                raise QueueFull(f"{len(self.waiting)} requests are waiting already")
            self.waiting.append(handle)
        self.wake.set()
        return handle

    def shutdown(self) -> None:
        self.running = False
        self.wake.set()
        self.thread.join(timeout=10)

    @property
    def load(self) -> dict[str, int]:
        """What /health reports: counters only (read from another thread, they are never torn)."""
        return {
            "active": len(self.rows),
            "waiting": len(self.waiting),
            "steps": self.steps,
            "prefilled_tokens": self.prefilled_tokens,
            "reused_tokens": self.prefix_cache.reused_tokens,
            "prefix_cache_bytes": self.prefix_cache.bytes,
        }

    @property
    def prefix_stats(self) -> dict[str, int]:
        return {**self.prefix_cache.stats, "prefilled_tokens": self.prefilled_tokens}

    # ---- the engine thread ---------------------------------------------------------------------
    def _run(self) -> None:
        while self.running:
            try:
                self._admit()
                if not self.rows:
                    self.wake.wait(timeout=0.5)
                    self.wake.clear()
                    continue
                self._decode()
            except Exception as e:  # a bug must not hang every client: fail them all, keep serving
                for h in self.rows + list(self.waiting):
                    h._put(RuntimeError(f"generation failed: {e}"))
                self.rows, self.next_tokens, self.cache.n = [], [], 0
                self.waiting.clear()

    @torch.inference_mode()
    def _admit(self) -> None:
        while len(self.rows) < self.max_batch:
            with self.lock:
                if not self.waiting:
                    return
                handle = self.waiting.popleft()
            if handle.cancelled:
                continue
            if time.monotonic() > handle.deadline:  # waited its whole time in the queue
                handle._put(Piece(-1, "", 0.0, "timeout"))
                continue
            if handle.params.max_new_tokens == 0:
                handle._put(Piece(-1, "", 0.0, "length"))
                continue
            prompt = handle.prompt_ids
            cache = PrefillCache(self.model, len(prompt))
            # at least the last token is prefilled: its logits give the first new token
            L = self.prefix_cache.fill(prompt, cache, limit=len(prompt) - 1)
            ids = torch.tensor([prompt[L:]], device=self.cache.valid.device)
            logits, _ = self.model(ids, cache=cache, logits_to_keep=1)
            self.prefilled_tokens += len(prompt) - L
            row = len(self.rows)
            self.cache.load(row, cache)
            self.rows.append(handle)
            self.next_tokens.append(-1)
            self._emit(row, logits[:, -1])
            # after the first token is out (not on its time to first token); before the next
            # admission, so a request admitted right after this one already finds it
            self.prefix_cache.insert(prompt, cache.k, cache.v)
        self._retire()

    @torch.inference_mode()
    def _decode(self) -> None:
        n = self.cache.n = len(self.rows)
        ids = torch.tensor(self.next_tokens, device=self.cache.valid.device)[:, None]  # (n, 1)
        logits, _ = self.model(ids, cache=self.cache, logits_to_keep=1)  # (n, 1, V)
        self.steps += 1
        self.max_rows_seen = max(self.max_rows_seen, n)
        greedy = [r for r, h in enumerate(self.rows) if h.params.temperature == 0]
        if greedy:
            tokens = logits[greedy, -1].argmax(-1).tolist()
            for r, t in zip(greedy, tokens, strict=True):
                self._take(r, t, float("nan"))
        for r, h in enumerate(self.rows):
            if h.params.temperature > 0:
                self._emit(r, logits[r : r + 1, -1])
        self._retire()

    def _emit(self, row: int, logits: torch.Tensor) -> None:
        h = self.rows[row]
        try:
            token, logprob = sample(logits, h.params, h.generator, want_logprobs=h.params.temperature > 0)
        except RuntimeError as e:  # e.g. a distribution that is all -inf: this request fails, not the batch
            h._put(RuntimeError(f"sampling failed: {e}"))
            h.state.done = True
            return
        self._take(row, int(token[0]), float(logprob[0]) if logprob is not None else float("nan"))

    def _take(self, row: int, token: int, logprob: float) -> None:
        """Hand ``token`` to its request, or end it; a row that ended is retired by ``_retire``."""
        h = self.rows[row]
        self.next_tokens[row] = token
        if h.cancelled:
            h.state.done = True
            return
        n = h.generated + 1  # with this token, unless it is an end token
        if n >= h.params.max_new_tokens or len(h.prompt_ids) + n >= self.max_len:
            end = "length"
        else:
            end = "timeout" if time.monotonic() > h.deadline else None
        text, reason = take(h.state, token, self.stop_ids, end)
        h.generated += reason != "eos"
        h._put(Piece(token, text, logprob, reason))

    def _retire(self) -> None:
        """Free the rows whose request ended, moving the last rows into the gaps (rows stay packed)."""
        r = 0
        while r < len(self.rows):
            if self.rows[r].state.done:
                last = len(self.rows) - 1
                if r != last:
                    self.cache.move(last, r)
                    self.rows[r], self.next_tokens[r] = self.rows[last], self.next_tokens[last]
                self.rows.pop()
                self.next_tokens.pop()
            else:
                r += 1
        self.cache.n = len(self.rows)
