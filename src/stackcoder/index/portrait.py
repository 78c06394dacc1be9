"""A Data Portrait (Marone & Van Durme, 2023): a Bloom filter over 50-character n-grams of the
training data, for "was this text in it?" (recipe.md §5).

Build: content is whitespace-normalised (runs of newlines → one ``\\n``, other whitespace runs → one
space, leading whitespace of each line dropped), then the n-grams starting every 50 characters
(stride = width) go into the filter. Query: every offset of the normalised query is tested; hits at
offsets ``i, i + 50, i + 100, …`` chain into a span, because text copied from the data lines up with
the stride at one offset in 50. A span of ``c`` chained hits is a chance match with probability
``fpr ** c`` for the filter's *measured* false-positive rate.

A filter is a file of ``m`` bits (memory-mapped) with ``k`` hash functions by double hashing of one
128-bit xxh3 hash; ``m`` and ``k`` follow from the capacity and the target false-positive rate. The
real rate is measured after building, on n-grams known to be absent, and stored beside the bits.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xxhash

WIDTH = 50  # characters per n-gram, and the stride between stored n-grams (recipe.md §5)


def normalize(text: str) -> str:
    """recipe.md §5: runs of newlines → one newline, other whitespace runs → one space, leading
    whitespace per line stripped (trailing whitespace too: it never precedes anything kept)."""
    return normalize_with_offsets(text)[0]


def normalize_with_offsets(text: str) -> tuple[str, list[int]]:
    """``normalize(text)`` and, for each of its characters, the offset in ``text`` it stands for."""
    out: list[str] = []
    where: list[int] = []
    newline = space = -1  # the offset of a pending newline / space, -1 when none is pending
    for i, c in enumerate(text):
        if c == "\n" or c == "\r":
            if newline < 0:
                newline = i
            space = -1
        elif c.isspace():
            if newline < 0 and space < 0 and out:  # a line's leading whitespace never becomes a space
                space = i
        else:
            if newline >= 0 and out:
                out.append("\n")
                where.append(newline)
            elif space >= 0:
                out.append(" ")
                where.append(space)
            newline = space = -1
            out.append(c)
            where.append(i)
    return "".join(out), where


def ngrams(normalized: str, stride: int = WIDTH) -> list[str]:
    return [normalized[i : i + WIDTH] for i in range(0, len(normalized) - WIDTH + 1, stride)]


def size_for(capacity: int, fpr: float) -> tuple[int, int]:
    """(bits m, hash functions k) for ``capacity`` items at false-positive rate ``fpr``."""
    m = max(64, math.ceil(-capacity * math.log(fpr) / math.log(2) ** 2))
    return m, max(1, round(m / max(1, capacity) * math.log(2)))


class BloomFilter:
    """``m`` bits in a file (memory-mapped), ``k`` hash functions."""

    def __init__(self, path: str | Path, m: int, k: int, mode: str = "r"):
        self.path, self.m, self.k = Path(path), m, k
        nbytes = (m + 7) // 8
        if mode == "w+":
            self.bits = np.memmap(self.path, dtype=np.uint8, mode="w+", shape=(nbytes,))
        else:
            self.bits = np.memmap(self.path, dtype=np.uint8, mode=mode, shape=(nbytes,))

    def _positions(self, items: list[str]) -> np.ndarray:
        """(len(items), k) bit positions: h1 + i·h2 mod m (Kirsch–Mitzenmacher double hashing)."""
        h = np.array([xxhash.xxh3_128_intdigest(s.encode("utf-8")) for s in items], dtype=object)
        h1 = np.array([int(x) & 0xFFFFFFFFFFFFFFFF for x in h], dtype=np.uint64)
        h2 = np.array([(int(x) >> 64) | 1 for x in h], dtype=np.uint64)
        i = np.arange(self.k, dtype=np.uint64)
        with np.errstate(over="ignore"):  # wrapping uint64 arithmetic is the point
            return (h1[:, None] + i[None, :] * h2[:, None]) % np.uint64(self.m)

    def add(self, items: list[str]) -> None:
        if not items:
            return
        pos = self._positions(items).ravel()
        np.bitwise_or.at(
            self.bits, (pos >> np.uint64(3)).astype(np.int64), (1 << (pos & np.uint64(7))).astype(np.uint8)
        )

    def contains(self, items: list[str]) -> np.ndarray:
        if not items:
            return np.zeros(0, dtype=bool)
        pos = self._positions(items)
        byte = self.bits[(pos >> np.uint64(3)).astype(np.int64)]
        return ((byte >> (pos & np.uint64(7)).astype(np.uint8)) & 1).astype(bool).all(axis=1)

    def flush(self) -> None:
        self.bits.flush()


@dataclass
class Span:
    start: int  # offsets in the query text as given (not normalised)
    end: int
    ngrams: int  # chained hits
    chance_probability: float


def measure_fpr(bloom: BloomFilter, samples: int = 20_000, seed: int = 0) -> float:
    """The rate at which n-grams that are certainly absent test present: random 50-character strings
    of CJK ideographs, which no code n-gram of the data is."""
    rng = np.random.default_rng(seed)
    alphabet = np.array([chr(c) for c in range(0x4E00, 0x4F00)])
    probes = ["".join(row) for row in alphabet[rng.integers(0, len(alphabet), size=(samples, WIDTH))]]
    return float(bloom.contains(probes).mean())


def spans(hits: np.ndarray, where: list[int], fpr: float, text_len: int) -> list[Span]:
    """Chains of hits at offsets i, i + WIDTH, …; each becomes a span of the original text."""
    out: list[Span] = []
    n = len(hits)
    for first in range(min(WIDTH, n)):
        run_start = None
        for j in range(first, n + WIDTH, WIDTH):
            hit = j < n and bool(hits[j])
            if hit and run_start is None:
                run_start = j
            elif not hit and run_start is not None:
                count = (j - run_start) // WIDTH
                last = j - 1  # the last character of the last chained n-gram (it starts at j - WIDTH)
                end = where[last] + 1 if last < len(where) else text_len
                out.append(Span(where[run_start], end, count, fpr**count))
                run_start = None
    return sorted(out, key=lambda s: (s.start, -s.end))


class Portrait:
    """A directory of Bloom filter shards (one per build task) and ``portrait.json``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        meta_file = self.root / "portrait.json"
        if not meta_file.is_file():
            from stackcoder.errors import UserError

            raise UserError(f"{self.root}: no portrait.json (build the index first)")
        self.meta = json.loads(meta_file.read_text())
        self.shards = [BloomFilter(self.root / s["file"], s["m"], s["k"]) for s in self.meta["shards"]]
        # an n-gram tests present if any shard says so: 1 − Π(1 − fpr_s)
        self.fpr = 1 - math.prod(1 - s["measured_fpr"] for s in self.meta["shards"])

    @staticmethod
    def build(
        root: str | Path, texts_per_shard: list[list[str]], capacity: int, fpr: float = 0.01
    ) -> Portrait:
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        shards = []
        for s, texts in enumerate(texts_per_shard):
            m, k = size_for(capacity, fpr)
            bloom = BloomFilter(root / f"{s:05d}.bloom", m, k, mode="w+")
            count = 0
            for t in texts:
                grams = ngrams(normalize(t))
                bloom.add(grams)
                count += len(grams)
            bloom.flush()
            shards.append(
                {
                    "file": f"{s:05d}.bloom",
                    "m": m,
                    "k": k,
                    "ngrams": count,
                    "measured_fpr": measure_fpr(bloom),
                }
            )
        meta = {
            "width": WIDTH,
            "stride": WIDTH,
            "capacity_per_shard": capacity,
            "target_fpr": fpr,
            "shards": shards,
        }
        (root / "portrait.json").write_text(json.dumps(meta, indent=2) + "\n")
        return Portrait(root)

    def query(self, text: str, min_ngrams: int = 1) -> list[Span]:
        """Spans of ``text`` found in the data: chains of at least ``min_ngrams`` hits. Each carries
        its chance probability (one hit alone: ``fpr``; two chained: ``fpr²``), so callers decide
        what to show; a span of 100 copied characters holds one or two aligned n-grams."""
        norm, where = normalize_with_offsets(text)
        grams = [norm[i : i + WIDTH] for i in range(0, len(norm) - WIDTH + 1)]
        hits = np.zeros(len(grams), dtype=bool)
        for bloom in self.shards:
            hits |= bloom.contains(grams)
        return [s for s in spans(hits, where, self.fpr, len(text)) if s.ngrams >= min_ngrams]
