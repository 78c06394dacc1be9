"""A Data Portrait (Marone & Van Durme, 2023): a Bloom filter over 50-character n-grams of the
training data, for "was this text in it?" (recipe.md §5).

Build: content is whitespace-normalised (runs of newlines → one ``\\n``, other whitespace runs → one
space, leading whitespace of each line dropped), then the n-grams starting every 50 characters
(stride = width) go into the filter. Query: every offset of the normalised query is tested; hits at
offsets ``i, i + 50, i + 100, …`` chain into a span, because text copied from the data lines up with
the stride at one offset in 50. A span of ``c`` chained hits is a chance match with probability
``fpr ** c`` for the filter's *measured* false-positive rate.

Hashing is vectorised, because a query tests every offset (50 times the n-grams a build adds): one
polynomial hash of each 50-codepoint window, mod 2**64, computed for all offsets at once from prefix
sums, then two splitmix64 finalisers give ``h1``, ``h2`` and the ``k`` bit positions
``h1 + i·h2 mod m`` (Kirsch–Mitzenmacher double hashing). ``m`` and ``k`` follow from the capacity
and the target false-positive rate. A shard is a file of ``m`` bits (memory-mapped) and a JSON file
beside it with ``m``, ``k``, its counts and the rate measured after building on n-grams known to be
absent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stackcoder.atomic import replacing
from stackcoder.errors import UserError

WIDTH = 50  # characters per n-gram, and the stride between stored n-grams (recipe.md §5)
HASH = "poly64-splitmix64/1"  # recorded in each shard: a filter is only readable with its hash
_BASE = 0x100000001B3 * 2 + 1  # odd, so invertible mod 2**64 (the prefix-sum trick needs that)
_INV = pow(_BASE, -1, 1 << 64)

# every codepoint for which str.isspace() is true lies below U+3001; a table covers them, the last
# entry stands for everything above and is False
_WS_TABLE = np.array([chr(c).isspace() for c in range(0x3001)] + [False])
_NEWLINES = (10, 13)


def codepoints(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


def _decode(codes: np.ndarray) -> str:
    return codes.astype("<u4").tobytes().decode("utf-32-le", "surrogatepass")


def normalize_codes(text: str) -> tuple[np.ndarray, np.ndarray]:
    """The normalised text as codepoints, and for each of them the offset in ``text`` it stands for
    (a separator stands for the first newline of its whitespace run, else the run's first character)."""
    c = codepoints(text)
    ws = _WS_TABLE[np.minimum(c, len(_WS_TABLE) - 1)]
    kept = np.flatnonzero(~ws)
    if len(kept) == 0:
        return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int64)
    gap = np.diff(kept) > 1  # a whitespace run lies between kept[t] and kept[t + 1]
    run_first = kept[:-1][gap] + 1
    run_next = kept[1:][gap]
    newlines = np.flatnonzero((c == _NEWLINES[0]) | (c == _NEWLINES[1]))
    j = np.searchsorted(newlines, run_first)
    first_newline = newlines[np.minimum(j, max(len(newlines) - 1, 0))] if len(newlines) else run_first
    has_newline = (j < len(newlines)) & (first_newline < run_next)
    out_kept = np.arange(len(kept)) + np.concatenate([[0], np.cumsum(gap)])
    out_sep = out_kept[1:][gap] - 1
    codes = np.empty(len(kept) + len(run_first), dtype=np.uint32)
    where = np.empty(len(codes), dtype=np.int64)
    codes[out_kept], where[out_kept] = c[kept], kept
    codes[out_sep] = np.where(has_newline, 10, 32)
    where[out_sep] = np.where(has_newline, first_newline, run_first)
    return codes, where


def normalize(text: str) -> str:
    """recipe.md §5: runs of newlines → one newline, other whitespace runs → one space, leading
    whitespace per line stripped (trailing whitespace too: it never precedes anything kept)."""
    return _decode(normalize_codes(text)[0])


def normalize_with_offsets(text: str) -> tuple[str, list[int]]:
    """``normalize(text)`` and, for each of its characters, the offset in ``text`` it stands for."""
    codes, where = normalize_codes(text)
    return _decode(codes), where.tolist()


_POWERS: dict[int, np.ndarray] = {}


def _powers(base: int, n: int) -> np.ndarray:
    """``base**0 … base**(n-1)`` mod 2**64, from a cache grown by doubling (queries come in all sizes)."""
    have = _POWERS.get(base)
    if have is None or len(have) < n:
        size = max(n, 2 * len(have) if have is not None else 1 << 16)
        p = np.full(size, base, dtype=np.uint64)
        p[0] = 1
        with np.errstate(over="ignore"):
            have = _POWERS[base] = np.multiply.accumulate(p)  # uint64 products wrap: mod 2**64
    return have[:n]


def window_hashes(codes: np.ndarray, stride: int = 1) -> np.ndarray:
    """The 64-bit polynomial hash ``Σ c[i+j]·B^(W-1-j)`` of every window of WIDTH codepoints starting
    at a multiple of ``stride``. Every offset (a query): from one prefix sum,
    ``(Q[i+W] − Q[i])·B^(i+W-1)`` with ``Q[t] = Σ_{s<t} c[s]·B^(−s)``. Every WIDTH-th (a build): the
    windows do not overlap, so one row-wise dot product with the powers."""
    n = len(codes) - WIDTH + 1
    if n <= 0:
        return np.zeros(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        if stride == WIDTH:
            rows = codes[: (n - 1) // WIDTH * WIDTH + WIDTH].astype(np.uint64).reshape(-1, WIDTH)
            return rows @ _powers(_BASE, WIDTH)[::-1]
        inv = _powers(_INV, len(codes))
        q = np.concatenate([[np.uint64(0)], np.cumsum(codes.astype(np.uint64) * inv, dtype=np.uint64)])
        i = np.arange(0, n, stride)
        return (q[i + WIDTH] - q[i]) * _powers(_BASE, len(codes))[i + WIDTH - 1]


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every output bit depends on every input bit."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def size_for(capacity: int, fpr: float) -> tuple[int, int]:
    """(bits m, hash functions k) for ``capacity`` items at false-positive rate ``fpr``."""
    m = max(64, math.ceil(-max(1, capacity) * math.log(fpr) / math.log(2) ** 2))
    return m, max(1, round(m / max(1, capacity) * math.log(2)))


class BloomFilter:
    """``m`` bits in a file (memory-mapped), ``k`` hash functions; items are window hashes."""

    def __init__(self, path: str | Path, m: int, k: int, mode: str = "r"):
        self.path, self.m, self.k = Path(path), m, k
        self.bits = np.memmap(self.path, dtype=np.uint8, mode=mode, shape=((m + 7) // 8,))

    def _double(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(over="ignore"):
            return _mix(hashes), _mix(hashes ^ np.uint64(0x9E3779B97F4A7C15)) | np.uint64(1)

    def _probe(self, h1: np.ndarray, h2: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(byte index, bit in byte) of the i-th hash function: h1 + i·h2 mod m."""
        with np.errstate(over="ignore"):
            pos = (h1 + np.uint64(i) * h2) % np.uint64(self.m)
        return (pos >> np.uint64(3)).astype(np.int64), (pos & np.uint64(7)).astype(np.uint8)

    def add(self, hashes: np.ndarray) -> None:
        if not len(hashes):
            return
        h1, h2 = self._double(hashes)
        for i in range(self.k):
            byte, bit = self._probe(h1, h2, i)
            for b in range(8):  # a repeated index writes the same value, so plain fancy assignment is safe
                self.bits[byte[bit == b]] |= np.uint8(1 << b)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        """Probe by probe, only for the items every earlier probe found: about half the bits are set,
        so an absent item is usually out after one or two probes rather than ``k``."""
        found = np.zeros(len(hashes), dtype=bool)
        alive = np.arange(len(hashes))
        h1, h2 = self._double(hashes)
        for i in range(self.k):
            if not len(alive):
                return found
            byte, bit = self._probe(h1, h2, i)
            set_ = ((self.bits[byte] >> bit) & 1).astype(bool)
            alive, h1, h2 = alive[set_], h1[set_], h2[set_]
        found[alive] = True
        return found

    def flush(self) -> None:
        self.bits.flush()


def absent_probes(samples: int = 20_000, seed: int = 0) -> np.ndarray:
    """Hashes of random 50-character strings of CJK ideographs, which no n-gram of code is."""
    rng = np.random.default_rng(seed)
    return window_hashes(rng.integers(0x4E00, 0x9FFF, size=samples * WIDTH).astype(np.uint32), WIDTH)


def measure_fpr(bloom: BloomFilter, samples: int = 20_000, seed: int = 0) -> float:
    """The rate at which n-grams that are certainly absent test present."""
    return float(bloom.contains(absent_probes(samples, seed)).mean())


@dataclass
class Span:
    start: int  # offsets in the query text as given (not normalised), in codepoints
    end: int
    ngrams: int  # chained hits
    chance_probability: float
    text: str  # the normalised text the chained n-grams cover (what the data holds)


def spans(hits: np.ndarray, where: np.ndarray, norm: str, fpr: float) -> list[Span]:
    """Chains of hits at offsets i, i + WIDTH, …; each becomes a span of the original text."""
    out: list[Span] = []
    for first in range(min(WIDTH, len(hits))):
        h = np.concatenate([[0], hits[first::WIDTH].astype(np.int8), [0]])
        d = np.diff(h)
        for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True):
            start = first + int(a) * WIDTH
            last = first + (int(b) - 1) * WIDTH + WIDTH - 1  # last character of the last n-gram
            count = int(b - a)
            out.append(
                Span(int(where[start]), int(where[last]) + 1, count, fpr**count, norm[start : last + 1])
            )
    return sorted(out, key=lambda s: (s.start, -s.end))


def write_shard(
    root: str | Path, name: str, texts: Iterable[str], capacity: int | None = None, fpr: float = 0.01
) -> dict:
    """Write ``NAME.bloom`` and return its metadata (also written as ``NAME.json`` by callers that
    add to it). With no ``capacity`` the filter is sized for exactly the n-grams it holds, which
    gives the smallest file at the target rate; a fixed capacity keeps every shard the same size."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    hashes = np.concatenate(
        [np.zeros(0, np.uint64)] + [window_hashes(normalize_codes(t)[0], WIDTH) for t in texts]
    )
    count = len(hashes)
    m, k = size_for(capacity if capacity else count, fpr)
    with replacing(root / f"{name}.bloom") as tmp:  # a shard file is whole or absent
        bloom = BloomFilter(tmp, m, k, mode="w+")
        bloom.add(hashes)
        bloom.flush()
        measured = measure_fpr(bloom)
        del bloom
    return {
        "file": f"{name}.bloom",
        "hash": HASH,
        "m": m,
        "k": k,
        "ngrams": count,
        "capacity": capacity or count,
        "fixed_capacity": bool(capacity),
        "target_fpr": fpr,
        "measured_fpr": measured,
    }


class Portrait:
    """The Bloom filter shards of a directory (``*.bloom`` with ``*.json`` beside each)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        metas = sorted(self.root.glob("*.json"))
        if not metas:
            raise UserError(f"{self.root}: no Bloom filter shards (build the index first)")
        self.shards_meta = [json.loads(f.read_text()) for f in metas]
        for meta, f in zip(self.shards_meta, metas, strict=True):
            if meta.get("hash") != HASH:
                raise UserError(f"{f}: built with hash {meta.get('hash')!r}, this version reads {HASH!r}")
        self.shards = [BloomFilter(self.root / s["file"], s["m"], s["k"]) for s in self.shards_meta]
        # an n-gram tests present if any shard says so: 1 − Π(1 − fpr_s)
        self.fpr = 1 - math.prod(1 - s["measured_fpr"] for s in self.shards_meta)

    @property
    def nbytes(self) -> int:
        return sum(b.bits.nbytes for b in self.shards)

    def hits(self, hashes: np.ndarray) -> np.ndarray:
        hits = np.zeros(len(hashes), dtype=bool)
        for bloom in self.shards:
            rest = ~hits  # an n-gram found in one shard needs no other
            if rest.any():
                hits[rest] = bloom.contains(hashes[rest])
        return hits

    def query(self, text: str, min_ngrams: int = 1) -> list[Span]:
        """Spans of ``text`` found in the data: chains of at least ``min_ngrams`` hits. Each carries
        its chance probability (one hit alone: ``fpr``; two chained: ``fpr²``), so callers decide
        what to show; a span of 100 copied characters holds one or two aligned n-grams."""
        codes, where = normalize_codes(text)
        hits = self.hits(window_hashes(codes))
        found = spans(hits, where, _decode(codes), self.fpr)
        return [s for s in found if s.ngrams >= min_ngrams]
