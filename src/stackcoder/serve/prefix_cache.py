"""Reuse of the keys and values of recent prompts (editors resend the same window, recipe.md §5).

An editor posts its whole ~1,024-token window after every pause in typing, and between two requests
usually only a few tokens near the cursor change. ``PrefixCache`` keeps the keys and values of recent
prompts in a radix tree over token ids, as SGLang's radix cache does (vLLM's automatic prefix caching
does the same with fixed-size hashed blocks): a prompt that shares its first L tokens with a cached
one takes their keys and values from the tree and prefills only the rest. Prompts that share a
beginning share its storage, so ten successive windows of one file cost about one window plus their
tails. The tree is bounded in bytes; past the bound the least recently used leaves go first.

The tree holds every position of a prompt, not the ring buffer a sequence decodes on: with a sliding
window W, a new token at position q needs the keys of positions (q - W, q], which a ring filled by a
longer prompt may have overwritten. ``PrefillCache`` prefills the new tokens over a linear buffer of
the prompt's positions (the reused ones copied in), so what it reuses is exact for any L and W; the
engine then copies the last ``min(W, context)`` positions into the sequence's slot.

Everything here runs on the engine thread: no locks, and an entry is copied out before any later
insertion can split or evict it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from stackcoder.model.attention import dense_mask
from stackcoder.model.model import Starcoder2


class PrefillCache:
    """The model's ``Cache`` for one prompt of N tokens whose first ``start`` positions are already in
    ``k`` and ``v`` (copied from the prefix cache): one forward over tokens [start, N) attends to the
    keys of the window before them and fills in the rest, leaving all N positions for the prefix
    cache and the slot."""

    def __init__(self, model: Starcoder2, n_tokens: int):
        cfg = model.config
        p = next(model.parameters())
        shape = (cfg.num_hidden_layers, cfg.num_key_value_heads, n_tokens, cfg.head_dim)
        self.k = torch.empty(shape, dtype=p.dtype, device=p.device)  # (layers, n_kv, N, hd)
        self.v = torch.empty(shape, dtype=p.dtype, device=p.device)
        self.window = cfg.sliding_window
        self.start = 0  # positions [0, start) are filled before the forward
        self._lo = self._hi = 0

    def step(self, attention_mask: torch.Tensor | None, T: int) -> tuple[torch.Tensor, torch.Tensor]:
        assert attention_mask is None, "one prompt, no padding"
        L, device = self.start, self.k.device
        # the first new query (position L) sees keys (L - W, L]: nothing older is ever read
        lo = 0 if self.window is None else max(0, L - self.window + 1)
        self._lo, self._hi = lo, L + T
        q_idx = torch.arange(L, L + T, device=device)
        mask = dense_mask(q_idx, torch.arange(lo, L + T, device=device), self.window)  # (1, 1, T, Tk)
        return q_idx[None], mask

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.k[layer, :, self.start : self._hi] = k[0]
        self.v[layer, :, self.start : self._hi] = v[0]
        # (1, n_kv, Tk, hd): the reused window and the new tokens, in position order
        return self.k[layer, None, :, self._lo : self._hi], self.v[layer, None, :, self._lo : self._hi]


@dataclass(eq=False)
class _Node:
    """An edge of the tree: ``tokens`` at positions [depth, depth + len(tokens)) and their keys and
    values, (layers, n_kv, len(tokens), hd) each; children keyed by their first token."""

    tokens: list[int]
    k: torch.Tensor | None
    v: torch.Tensor | None
    depth: int
    parent: _Node | None
    children: dict[int, _Node] = field(default_factory=dict)
    last_used: int = 0

    @property
    def nbytes(self) -> int:
        return 0 if self.k is None else self.k.nbytes + self.v.nbytes


def _common(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class PrefixCache:
    """Keys and values of recent prompts in a radix tree over token ids, at most ``max_bytes``."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.root = _Node([], None, None, 0, None)
        self.bytes = 0
        self.clock = 0  # a counter, not time: the order of use is all LRU needs
        # what /info and the tests read: lookups, lookups that reused something, tokens reused
        self.lookups = self.hits = self.reused_tokens = 0

    @property
    def tokens(self) -> int:
        """Positions held (a prefix shared by several prompts counts once)."""
        return sum(len(n.tokens) for n in self._nodes())

    def fill(self, ids: list[int], cache: PrefillCache, limit: int) -> int:
        """Copy the keys and values of the longest cached prefix of ``ids`` (at most ``limit`` tokens)
        into ``cache``; returns its length L, the position to prefill from."""
        self.lookups += 1
        if self.max_bytes <= 0:
            return 0
        self.clock += 1
        node, n = self.root, 0
        while n < limit:
            child = node.children.get(ids[n])
            if child is None:
                break
            m = min(_common(child.tokens, ids[n : n + len(child.tokens)]), limit - n)
            cache.k[:, :, n : n + m] = child.k[:, :, :m]
            cache.v[:, :, n : n + m] = child.v[:, :, :m]
            child.last_used = self.clock
            n += m
            if m < len(child.tokens):
                break
            node = child
        cache.start = n
        self.hits += n > 0
        self.reused_tokens += n
        return n

    def insert(self, ids: list[int], k: torch.Tensor, v: torch.Tensor) -> None:
        """Keep the keys and values of ``ids`` ((layers, n_kv, len(ids), hd) each, all positions),
        then evict least recently used leaves until the tree fits ``max_bytes`` again."""
        if self.max_bytes <= 0 or not ids:
            return
        self.clock += 1
        node, d = self.root, 0
        while d < len(ids):
            child = node.children.get(ids[d])
            if child is None:
                tail_bytes = (k.nbytes + v.nbytes) * (len(ids) - d) // len(ids)
                if tail_bytes > self.max_bytes:
                    return  # it would evict everything and then itself
                # a slice of the prompt's buffer is copied, so the rest of the buffer can be freed
                leaf = _Node(ids[d:], k[:, :, d:].contiguous(), v[:, :, d:].contiguous(), d, node)
                node.children[ids[d]] = leaf
                self.bytes += leaf.nbytes
                leaf.last_used = self.clock
                break
            m = _common(child.tokens, ids[d : d + len(child.tokens)])
            if m < len(child.tokens) and d + m < len(ids):
                child = self._split(child, m)  # the prompt leaves this edge in its middle
            child.last_used = self.clock
            node, d = child, d + m
            if m < len(child.tokens):
                break  # the prompt ends inside the edge: nothing new to keep
        self._evict()

    def _split(self, node: _Node, m: int) -> _Node:
        """Cut ``node`` after its first ``m`` tokens; returns the new upper part."""
        upper = _Node(
            node.tokens[:m], node.k[:, :, :m].clone(), node.v[:, :, :m].clone(), node.depth, node.parent
        )
        upper.last_used = node.last_used
        node.parent.children[node.tokens[0]] = upper
        node.tokens, node.depth, node.parent = node.tokens[m:], node.depth + m, upper
        node.k, node.v = node.k[:, :, m:].clone(), node.v[:, :, m:].clone()
        upper.children[node.tokens[0]] = node
        return upper

    def _evict(self) -> None:
        while self.bytes > self.max_bytes:
            leaf = min((n for n in self._nodes() if not n.children), key=lambda n: n.last_used)
            del leaf.parent.children[leaf.tokens[0]]
            self.bytes -= leaf.nbytes

    def _nodes(self) -> list[_Node]:
        out, stack = [], list(self.root.children.values())
        while stack:
            n = stack.pop()
            out.append(n)
            stack.extend(n.children.values())
        return out

    @property
    def stats(self) -> dict[str, int]:
        return {
            "tokens": self.tokens,
            "bytes": self.bytes,
            "max_bytes": self.max_bytes,
            "lookups": self.lookups,
            "hits": self.hits,
            "reused_tokens": self.reused_tokens,
        }
