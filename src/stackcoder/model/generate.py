"""Generation for the StarCoder2 model: a KV cache bounded by the sliding window, sampling, stop sequences.

Three entry points share one decoding loop (`Decoding`): `generate` (token ids, batched, left padding),
`generate_text` (strings in, strings out, stop sequences) and `stream` (one prompt, one `Piece` per
generated token, the interface a server streams from). `take` is the one rule for how a sampled token
ends a sequence (an end token, a stop sequence, the length), shared with the server's engine, and
`Collected` the one sum of a request's `Piece`s (text, generated tokens, finish reason).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial

import torch
from tokenizers import Tokenizer

from stackcoder.errors import UserError
from stackcoder.model.attention import dense_mask
from stackcoder.model.model import Starcoder2
from stackcoder.tokenizer.files import decode, encode


@dataclass
class SamplingParams:
    max_new_tokens: int = 128
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    top_k: int = 0  # 0 = off
    stop: list[str] = field(default_factory=list)  # text that ends generation; not part of the output
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 0 or self.temperature < 0 or self.top_k < 0 or not 0 < self.top_p <= 1:
            raise UserError(f"invalid sampling parameters: {self}")


class KVCache:
    """Keys and values of past tokens, one ring buffer per layer, at most `sliding_window` slots.

    With a window W a query sees the W most recent keys, itself included, so when token i is written
    over slot i % W the token it evicts (i - W) is exactly the one that left the window; memory stays
    (B, n_kv, min(W, max_len), hd) per layer however long generation runs. Slots are unordered: the
    mask is built from the column index each slot holds, and attention does not care about key order.
    """

    def __init__(self, model: Starcoder2, batch_size: int, max_len: int):
        cfg = model.config
        p = next(model.parameters())
        W = cfg.sliding_window
        self.window = W
        self.capacity = max_len if W is None else min(W, max_len)
        shape = (batch_size, cfg.num_key_value_heads, self.capacity, cfg.head_dim)
        self.k = [torch.zeros(shape, dtype=p.dtype, device=p.device) for _ in range(cfg.num_hidden_layers)]
        self.v = [torch.zeros(shape, dtype=p.dtype, device=p.device) for _ in range(cfg.num_hidden_layers)]
        self.slot_index = torch.full((self.capacity,), -1, dtype=torch.long, device=p.device)
        self.slot_valid = torch.zeros(batch_size, self.capacity, dtype=torch.bool, device=p.device)
        self.next_pos = torch.zeros(batch_size, dtype=torch.long, device=p.device)
        self.length = 0  # columns seen (padding included)
        self.padded = False  # some slot holds padding: decode steps need a mask
        # how `update` stores and returns each layer's keys and values for the step `step` planned
        self._update: Callable[[int, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

    def step(self, attention_mask: torch.Tensor | None, T: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, device = self.slot_valid.shape[0], self.slot_index.device
        if attention_mask is not None and not bool(attention_mask.all()):
            new_valid, self.padded = attention_mask.bool(), True
        else:
            new_valid = torch.ones(B, T, dtype=torch.bool, device=device)
        # left padding: positions count real tokens only (pads get 0; nothing attends to them)
        pos = (self.next_pos[:, None] + new_valid.cumsum(1) - 1).clamp(min=0)  # (B, T)
        self.next_pos += new_valid.sum(1)
        q_idx = torch.arange(self.length, self.length + T, device=device)
        n_write = min(T, self.capacity)  # earlier columns of a long chunk are out of every later window
        slots = q_idx[T - n_write :] % self.capacity
        if T == 1:  # decode: write first, then attend over the ring alone (no concatenation)
            self._write_meta(slots, q_idx, new_valid)
            # slots fill in order until the ring wraps; every filled slot is inside the window
            n = min(self.length + 1, self.capacity)
            mask = None
            if self.padded:
                mask = dense_mask(q_idx, self.slot_index[:n], self.window, self.slot_valid[:, :n])
            self._update = partial(self._ring, slots, n)
        elif self.length == 0:  # prefill: attend over the chunk alone
            mask = dense_mask(q_idx, q_idx, self.window, new_valid)
            self._write_meta(slots, q_idx[T - n_write :], new_valid[:, T - n_write :])
            self._update = partial(self._chunk, slots, T - n_write)
        else:  # a multi-token chunk after a prefix: the past ring, then the chunk
            k_idx = torch.cat([self.slot_index, q_idx])
            k_valid = torch.cat([self.slot_valid, new_valid], dim=1)
            mask = dense_mask(q_idx, k_idx, self.window, k_valid)
            self._write_meta(slots, q_idx[T - n_write :], new_valid[:, T - n_write :])
            self._update = partial(self._concat, slots, T - n_write)
        self.length += T
        return pos, mask

    def _write_meta(self, slots: torch.Tensor, idx: torch.Tensor, valid: torch.Tensor) -> None:
        self.slot_index[slots] = idx
        self.slot_valid[:, slots] = valid

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._update(layer, k, v)

    def _ring(self, slots: torch.Tensor, n: int, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple:
        """Decode: write the token into its slot, attend over the n filled slots (B, n_kv, n, hd)."""
        self.k[layer].index_copy_(2, slots, k)
        self.v[layer].index_copy_(2, slots, v)
        return self.k[layer][:, :, :n], self.v[layer][:, :, :n]

    def _chunk(self, slots: torch.Tensor, skip: int, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple:
        """Prefill: attend over the chunk itself; keep its columns from ``skip`` on."""
        self._store(slots, skip, layer, k, v)
        return k, v

    def _concat(self, slots: torch.Tensor, skip: int, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple:
        """A chunk after a prefix: attend over the ring, then the chunk (read before the ring is written)."""
        full = torch.cat([self.k[layer], k], dim=2), torch.cat([self.v[layer], v], dim=2)
        self._store(slots, skip, layer, k, v)
        return full

    def _store(self, slots: torch.Tensor, skip: int, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
        self.k[layer].index_copy_(2, slots, k[:, :, skip:])
        self.v[layer].index_copy_(2, slots, v[:, :, skip:])


def sample(
    logits: torch.Tensor,
    params: SamplingParams,
    generator: torch.Generator | None = None,
    want_logprobs: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Next tokens (B,) and their log-probabilities under the distribution sampled from (greedy:
    under the model's own distribution); skipping those saves a pass over the vocabulary per token."""
    logits = logits.float()
    if params.temperature == 0:
        tokens = logits.argmax(-1)
        if not want_logprobs:
            return tokens, None
        return tokens, logits.log_softmax(-1).gather(-1, tokens[:, None])[:, 0]
    logits = logits / params.temperature
    if params.top_k:
        kth = logits.topk(min(params.top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if params.top_p < 1:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        # drop a token when the ones more likely than it already reach top_p (the first always stays)
        drop = probs.cumsum(-1) - probs >= params.top_p
        drop[..., 0] = False  # a top_p below float32's smallest number would otherwise drop every token
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    logprobs = logits.log_softmax(-1)
    tokens = torch.multinomial(logprobs.exp(), 1, generator=generator)[:, 0]
    return tokens, logprobs.gather(-1, tokens[:, None])[:, 0]


class Decoding:
    """The decoding loop over a batch of token-id prompts, left-padded; iterate for (tokens, logprobs)
    per step, each (B,) on the CPU (logprobs None unless asked for). A row ends on an end token or when
    the caller sets `finished[row]`; rows that ended keep being computed (their tokens are ignored)
    until all have."""

    def __init__(
        self,
        model: Starcoder2,
        prompts: Sequence[Sequence[int]],
        params: SamplingParams,
        stop_token_ids: Sequence[int] = (),
        want_logprobs: bool = False,
    ):
        self.want_logprobs = want_logprobs
        if not prompts or any(len(p) == 0 for p in prompts):
            raise ValueError("every prompt needs at least one token")
        self.model, self.params = model, params
        self.stop_set = set(stop_token_ids)
        self.stop_token_ids = torch.tensor(sorted(self.stop_set), dtype=torch.long)
        device = next(model.parameters()).device
        T = max(len(p) for p in prompts)
        ids = torch.zeros(len(prompts), T, dtype=torch.long)
        mask = torch.zeros(len(prompts), T, dtype=torch.long)
        for row, p in enumerate(prompts):
            ids[row, T - len(p) :] = torch.tensor(list(p))
            mask[row, T - len(p) :] = 1
        self.input_ids, self.attention_mask = ids.to(device), mask.to(device)
        self.finished = torch.zeros(len(prompts), dtype=torch.bool)
        self.finish_reason: list[str | None] = [None] * len(prompts)
        self.generator = None
        if params.seed is not None:
            self.generator = torch.Generator(device=device).manual_seed(params.seed)

    @torch.inference_mode()
    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        n = self.params.max_new_tokens
        if n == 0:
            return
        B, T = self.input_ids.shape
        cache = KVCache(self.model, B, T + n)
        ids, mask = self.input_ids, self.attention_mask
        for step in range(n):
            logits, _ = self.model(ids, attention_mask=mask, cache=cache, logits_to_keep=1)
            tokens, logprobs = sample(logits[:, -1], self.params, self.generator, self.want_logprobs)
            tokens_cpu = tokens.cpu()
            active = ~self.finished
            yield tokens_cpu, (logprobs.cpu() if logprobs is not None else None)
            ended = active & torch.isin(tokens_cpu, self.stop_token_ids)
            for row in ended.nonzero().flatten().tolist():
                self.finish_reason[row] = "eos"
            self.finished |= ended
            if step == n - 1:
                for row in (~self.finished).nonzero().flatten().tolist():
                    self.finish_reason[row] = "length"
            if bool(self.finished.all()):
                return
            ids, mask = tokens[:, None], None


def generate(
    model: Starcoder2,
    prompts: Sequence[Sequence[int]],
    params: SamplingParams,
    stop_token_ids: Sequence[int] = (),
) -> list[list[int]]:
    """Generated token ids per prompt (the end token not included). No text, so no stop strings."""
    out: list[list[int]] = [[] for _ in prompts]
    decoding = Decoding(model, prompts, params, stop_token_ids)
    for tokens, _ in decoding:
        for row, t in enumerate(tokens.tolist()):
            if not decoding.finished[row] and t not in decoding.stop_set:
                out[row].append(t)
    return out


@dataclass
class Piece:
    """One generated token as a server streams it. `text` is what is new and final (may be empty:
    an incomplete UTF-8 character or a possible start of a stop sequence is held back)."""

    token_id: int
    text: str
    logprob: float
    finish_reason: str | None = None  # set on the last piece: "eos", "stop" or "length" (server: "timeout")

    @property
    def generated(self) -> bool:
        """A generated token (counted, returned): not the end token, nor a piece without a token."""
        return self.token_id >= 0 and self.finish_reason != "eos"


@dataclass
class Collected:
    """A request's pieces added up: the text, the generated tokens and their log-probabilities, and why
    it ended."""

    parts: list[str] = field(default_factory=list)
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish_reason: str = "length"

    def add(self, piece: Piece) -> Piece:
        self.parts.append(piece.text)
        if piece.generated:
            self.token_ids.append(piece.token_id)
            self.logprobs.append(piece.logprob)
        self.finish_reason = piece.finish_reason or self.finish_reason
        return piece

    @property
    def text(self) -> str:
        return "".join(self.parts)


class TextState:
    """Incremental detokenization of one sequence, with stop sequences."""

    def __init__(self, tokenizer: Tokenizer, stop: Sequence[str]):
        self.tokenizer, self.stop = tokenizer, [s for s in stop if s]
        self.ids: list[int] = []
        self.text = ""  # decoded so far (complete characters only)
        self.emitted = 0  # length of the prefix of `text` already handed out
        self.done = False

    def push(self, token_id: int) -> str:
        """Add a token; returns the text that became final. Sets `done` on a stop sequence."""
        self.ids.append(token_id)
        text = decode(self.tokenizer, self.ids)
        if text.endswith("\ufffd"):
            return ""  # a multi-byte character split across tokens: wait for the rest
        self.text = text
        for s in self.stop:
            at = self.text.find(s, max(0, self.emitted - len(s) + 1))
            if at >= 0:
                self.text, self.done = self.text[:at], True
        if self.done:
            return self.flush()
        hold = max((n for s in self.stop for n in range(1, len(s)) if self.text.endswith(s[:n])), default=0)
        return self._emit(len(self.text) - hold)

    def flush(self) -> str:
        """Everything not handed out yet (at the end: held-back text, even a lone partial character)."""
        if not self.done:
            self.text = decode(self.tokenizer, self.ids)
        return self._emit(len(self.text))

    def _emit(self, end: int) -> str:
        piece = self.text[self.emitted : end]
        self.emitted = max(self.emitted, end)
        return piece


def take(
    state: TextState, token: int, stop_ids: Container[int], end: str | None = None
) -> tuple[str, str | None]:
    """Feed one sampled token to a sequence: (the text that became final, the finish reason or None).

    An end token (``stop_ids``) ends it as "eos" and is not part of the text; a stop sequence as
    "stop"; otherwise ``end`` (the caller's "length" on the last allowed token, the server's
    "timeout") ends it with everything held back. An ended sequence has ``state.done`` set.
    """
    if token in stop_ids:
        text, reason = state.flush(), "eos"
    else:
        text = state.push(token)
        if state.done:
            reason = "stop"
        elif end is not None:
            text, reason = text + state.flush(), end
        else:
            return text, None
    state.done = True
    return text, reason


@dataclass
class Completion:
    text: str
    token_ids: list[int]
    finish_reason: str


def generate_text(
    model: Starcoder2,
    tokenizer: Tokenizer,
    prompts: Sequence[str | Sequence[int]],
    params: SamplingParams,
    stop_token_ids: Sequence[int] = (),
) -> list[Completion]:
    """Batched generation from text (or token-id) prompts, with stop sequences."""
    prompt_ids = [encode(tokenizer, p) if isinstance(p, str) else list(p) for p in prompts]
    decoding = Decoding(model, prompt_ids, params, stop_token_ids)
    states = [TextState(tokenizer, params.stop) for _ in prompts]
    last = params.max_new_tokens - 1
    for step, (tokens, _) in enumerate(decoding):
        for row, t in enumerate(tokens.tolist()):
            if decoding.finished[row]:
                continue
            _, reason = take(states[row], t, decoding.stop_set, "length" if step == last else None)
            if reason is not None:
                decoding.finished[row] = True
                decoding.finish_reason[row] = reason
    for s in states:
        s.flush()
    reasons = decoding.finish_reason
    return [Completion(s.text, s.ids, r or "length") for s, r in zip(states, reasons, strict=True)]


def stream(
    model: Starcoder2,
    tokenizer: Tokenizer,
    prompt: str | Sequence[int],
    params: SamplingParams,
    stop_token_ids: Sequence[int] = (),
) -> Iterator[Piece]:
    """One Piece per generated token; the last one carries the finish reason (and any held-back text)."""
    ids = encode(tokenizer, prompt) if isinstance(prompt, str) else list(prompt)
    decoding = Decoding(model, [ids], params, stop_token_ids, want_logprobs=True)
    state = TextState(tokenizer, params.stop)
    last = params.max_new_tokens - 1
    for step, (tokens, logprobs) in enumerate(decoding):
        t, lp = int(tokens[0]), float(logprobs[0])
        text, reason = take(state, t, decoding.stop_set, "length" if step == last else None)
        yield Piece(t, text, lp, reason)
        if reason is not None:
            return
