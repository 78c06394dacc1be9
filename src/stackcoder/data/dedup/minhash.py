"""Near deduplication (recipe.md §1 stage 5, recipe.toml ``[dedup.near]``): MinHash LSH per language.

The Stack v2's parameters: tokens are the runs of ``\\w`` characters of the lower-cased text
(``re.split(r"\\W+", text.lower())`` without empty strings), shingles are 5 consecutive tokens
(as a set; files with fewer than 5 tokens are skipped), signatures have 250 slots, LSH uses
25 bands of 10 rows, the threshold is a Jaccard similarity of 0.7, and candidate pairs are joined
into connected components with one survivor each (``ranking.py``). Done per language: the
language is hashed into every band key, so files of two languages never share one.

The stages, as in datatrove's ``minhash.py``, each a pipeline step handing work on through files
in named folders under ``work/dedup/near/`` (docs/dedup.md has the formats):

1. ``MinhashDedupSignature``, one task per shard: signature of every file (exact duplicates
   already removed are skipped), its 25 band keys written to ``bands/<bucket>/<shard>.bin``,
   the bucket chosen by the key, and the signatures to ``signatures/<shard>.npy``.
2. ``MinhashDedupBuckets``, one task per bucket: the bucket's band records sorted by key; files
   sharing a key are candidates, each paired with the first of its group (a chain: the same
   components as all pairs, with O(n) pairs); a candidate is kept when its signatures agree on
   at least ``threshold`` of the slots (``candidate_pairs``); pairs go to ``pairs/<bucket>.bin``.
3. ``MinhashDedupCluster``, one task: union-find over the streamed pairs, then per component the
   best-ranked file survives; the others are written to ``removals/<shard>.parquet``.

Signatures: the shingles are hashed here (vectorised numpy, below) and the MinHash itself is
rensa's full-set R-MinHash (Rust; seeded, deterministic, every shingle counts), measured against
datasketch in ``benchmarks/bench_dedup.py`` and for quality in ``tests/data/dedup/``.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import xxhash
from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from stackcoder.atomic import replacing, write_bytes
from stackcoder.data import fields as F
from stackcoder.data.dedup.ranking import RANK_INPUTS, rank_key
from stackcoder.data.dedup.removals import read_removals, survivor_name, write_removals
from stackcoder.data.readers.shards import iter_shard, shard_path

BAND_RECORD = np.dtype([("key", "<u8"), ("file_id", "<u8")])
PAIR = np.dtype([("a", "<u8"), ("b", "<u8")])


@dataclass(frozen=True)
class MinhashConfig:
    """``[dedup.near]`` of recipe.toml, less ``enabled`` (which decides whether the passes run)."""

    ngram: int = 5
    num_perm: int = 250
    bands: int = 25
    rows: int = 10
    threshold: float = 0.7
    seed: int = 1  # ours: the permutations' seed (unpublished)
    # ours: keep a candidate pair only if its signatures agree on >= threshold of the slots;
    # LSH alone at 25x10 also pairs files well below 0.7 (docs/dedup.md has the measurement)
    verify: bool = True

    def __post_init__(self) -> None:
        if self.bands * self.rows != self.num_perm:
            raise ValueError(
                f"[dedup.near] bands x rows must equal num_perm: {self.bands} x {self.rows} "
                f"!= {self.num_perm}"
            )
        if self.ngram < 1:
            raise ValueError(f"[dedup.near] ngram must be at least 1, not {self.ngram}")
        if not 0 < self.threshold <= 1:
            raise ValueError(f"[dedup.near] threshold must be in (0, 1], not {self.threshold}")

    @classmethod
    def from_recipe(cls, section: dict[str, Any]) -> MinhashConfig:
        return cls(**{k: v for k, v in section.items() if k != "enabled"})


# --- shingles and signatures ------------------------------------------------------------------

_WORD = re.compile(r"\w+")
# bytes that belong to a token of ``normalized`` text: ASCII word characters and every non-ASCII
# byte (non-ASCII text is rewritten so that only its word characters remain, see ``normalized``)
_WORD_BYTES = np.zeros(256, dtype=bool)
_WORD_BYTES[[*b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"]] = True
_WORD_BYTES[0x80:] = True
# tabulation hashing of a token: the sum of one random 64-bit word per (position mod 64, byte);
# PCG64's raw output is stable across numpy versions, so shingle hashes are too
_TOKEN_TABLE = np.random.PCG64(0x5EED_70C3).random_raw(64 * 256).astype(np.uint64).reshape(64, 256)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer, in place: every input bit affects every output bit."""
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


def normalized(text: str) -> bytes:
    """The lower-cased text as bytes in which the runs of token bytes are exactly the recipe's
    tokens. ASCII text (almost all code; ``isascii`` is O(1)) is used as is: there ``\\w`` is
    ``[A-Za-z0-9_]``. Other text keeps only its regex tokens, joined by spaces."""
    if text.isascii():
        return text.encode("ascii").lower()
    return " ".join(_WORD.findall(text.lower())).encode("utf-8")


def token_hashes(data: bytes) -> np.ndarray:
    """One 64-bit hash per token of ``normalized`` bytes, in order, without a Python loop."""
    chars = np.frombuffer(data, dtype=np.uint8)
    word = _WORD_BYTES[chars]
    edges = np.diff(word.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts = np.flatnonzero(edges == 1)
    lengths = np.flatnonzero(edges == -1) - starts
    if not len(starts):
        return np.zeros(0, dtype=np.uint64)
    token_chars = chars[word]
    first = np.cumsum(lengths) - lengths  # (n_tokens,) index of each token's first byte
    offset = np.arange(len(token_chars)) - np.repeat(first, lengths)
    h = np.add.reduceat(_TOKEN_TABLE[offset & 63, token_chars], first)
    h ^= lengths.astype(np.uint64) * _GOLDEN
    return _fmix64(h)


def shingle_hashes(text: str, ngram: int = 5) -> np.ndarray | None:
    """The 64-bit hashes of the text's ``ngram``-token shingles (repeats included: MinHash of a
    multiset is that of its set), or None for a text with fewer than ``ngram`` tokens."""
    h = token_hashes(normalized(text))
    if len(h) < ngram:
        return None
    n = len(h) - ngram + 1
    acc = h[:n].copy()
    for k in range(1, ngram):  # a polynomial in the token hashes, then mixed
        acc *= _GOLDEN
        acc += h[k : k + n]
    return _fmix64(acc)


def signature(shingles: np.ndarray, num_perm: int = 250, seed: int = 1) -> np.ndarray:
    """MinHash signature of a shingle set: ``num_perm`` uint32 slots (rensa's R-MinHash)."""
    from rensa import RMinHash  # a native library: loaded on first use, never at import

    offsets = np.array([0, len(shingles)], dtype=np.uint64)
    digest = RMinHash.digest_matrix_from_flat_token_hashes(shingles, offsets, num_perm, seed)
    return np.asarray(digest.to_rows()[0], dtype=np.uint32)


def band_keys(sig: np.ndarray, language: str, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per band: a hash of the language, the band's index and its rows."""
    prefix = language.encode("utf-8") + b"\0"
    raw = np.ascontiguousarray(sig, dtype="<u4").reshape(bands, rows)
    return np.array(
        [xxhash.xxh3_64_intdigest(prefix + raw[i].tobytes(), seed=i) for i in range(bands)],
        dtype=np.uint64,
    )


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Fraction of equal slots, per row of two (n, num_perm) signature arrays."""
    return (sig_a == sig_b).mean(axis=-1)


# --- files --------------------------------------------------------------------------------------


def near_dir(dedup_dir: str | Path) -> Path:
    return Path(dedup_dir) / "near"


def band_path(dedup_dir: str | Path, bucket: int, shard: int) -> Path:
    return near_dir(dedup_dir) / "bands" / f"{bucket:05d}" / f"{shard:05d}.bin"


def signature_path(dedup_dir: str | Path, shard: int) -> Path:
    return near_dir(dedup_dir) / "signatures" / f"{shard:05d}.npy"


def pairs_path(dedup_dir: str | Path, bucket: int) -> Path:
    return near_dir(dedup_dir) / "pairs" / f"{bucket:05d}.bin"


def removal_path(dedup_dir: str | Path, shard: int) -> Path:
    return near_dir(dedup_dir) / "removals" / f"{shard:05d}.parquet"


def stats_path(dedup_dir: str | Path) -> Path:
    return near_dir(dedup_dir) / "stats.json"


def shard_rows(filtered_dir: str | Path, shard: int) -> int:
    path = shard_path(filtered_dir, shard)
    return pq.ParquetFile(path).metadata.num_rows if path.is_file() else 0


def iter_pairs(path: str | Path, chunk_pairs: int = 1 << 20) -> Iterator[np.ndarray]:
    """A pair file in chunks of at most ``chunk_pairs`` pairs: never the whole file in memory."""
    with open(path, "rb") as f:
        while True:
            chunk = np.fromfile(f, dtype=PAIR, count=chunk_pairs)
            if not len(chunk):
                return
            yield chunk


def _write_json(path: Path, data: dict) -> None:
    write_bytes(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


# --- stage 1: signatures and band records, per shard --------------------------------------------


class MinhashDedupSignature(PipelineStep):
    """Task ``r`` reads ``work/filtered/<r>``; writes band records for every bucket, the shard's
    signatures and ``signatures/<r>.json`` (files signed, skipped as short or exact duplicates)."""

    type = "🫂 - DEDUP"
    name = "🎯 MinHash signatures"
    flush_records = 1 << 16  # band records buffered before they are written out

    def __init__(
        self,
        filtered_dir: str,
        dedup_dir: str,
        buckets: int,
        config: MinhashConfig | None = None,
        exact_buckets: int = 0,
    ):
        """``exact_buckets``: how many exact-dedup removal lists each shard has (0: exact dedup
        did not run); files on them are not signed."""
        super().__init__()
        self.filtered_dir = str(filtered_dir)
        self.dedup_dir = str(dedup_dir)
        self.buckets = buckets
        self.config = config or MinhashConfig()
        self.exact_buckets = exact_buckets

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from stackcoder.data.dedup.exact import removal_path as exact_removal_path

        cfg = self.config
        exact = read_removals(exact_removal_path(self.dedup_dir, rank, b) for b in range(self.exact_buckets))
        per_language: dict[str, Counter] = {}
        with contextlib.ExitStack() as stack:
            paths = [band_path(self.dedup_dir, b, rank) for b in range(self.buckets)]
            tmps = [stack.enter_context(replacing(path)) for path in paths]
            outs = [stack.enter_context(open(tmp, "wb")) for tmp in tmps]
            sig_tmp = stack.enter_context(replacing(signature_path(self.dedup_dir, rank)))
            # row i of the shard has row i here; rows never signed stay 0 and are never looked up
            shape = (shard_rows(self.filtered_dir, rank), cfg.num_perm)
            sigs = np.lib.format.open_memmap(sig_tmp, mode="w+", dtype=np.uint32, shape=shape)
            buffered: list[np.ndarray] = []
            for record in iter_shard(self.filtered_dir, rank, columns=[F.CONTENT, F.LANGUAGE]):
                language = record[F.LANGUAGE] or ""
                counts = per_language.setdefault(language, Counter())
                counts["files"] += 1
                if record[F.FILE_ID] in exact:
                    counts["skipped_exact_duplicate"] += 1
                    continue
                with self.track_time():
                    recs = self._sign(record, language, sigs)
                if recs is None:
                    counts["skipped_short"] += 1
                    self.stat_update("skipped_short")
                    continue
                counts["signed"] += 1
                self.stat_update("signed")
                buffered.append(recs)
                if len(buffered) * cfg.bands >= self.flush_records:
                    self._flush(buffered, outs)
                    buffered = []
            self._flush(buffered, outs)
            sigs.flush()
            del sigs  # closes the map before the file is renamed
        totals: Counter = sum(per_language.values(), Counter())
        stats = {**totals, "languages": {k: dict(v) for k, v in sorted(per_language.items())}}
        _write_json(signature_path(self.dedup_dir, rank).with_suffix(".json"), stats)
        return iter(())

    def _sign(self, record: dict, language: str, sigs: np.ndarray) -> np.ndarray | None:
        """The file's band records (its signature stored in ``sigs``), None when too short."""
        cfg = self.config
        shingles = shingle_hashes(record[F.CONTENT] or "", cfg.ngram)
        if shingles is None:
            return None
        sig = signature(shingles, cfg.num_perm, cfg.seed)
        sigs[record[F.FILE_ID] & 0xFFFFFFFF] = sig
        recs = np.empty(cfg.bands, dtype=BAND_RECORD)
        recs["key"] = band_keys(sig, language, cfg.bands, cfg.rows)
        recs["file_id"] = record[F.FILE_ID]
        return recs

    def _flush(self, buffered: list[np.ndarray], outs: list) -> None:
        if not buffered:
            return
        recs = np.concatenate(buffered)
        bucket = recs["key"] % np.uint64(self.buckets)
        order = np.argsort(bucket, kind="stable")  # keeps the shard's order inside each bucket
        bounds = np.searchsorted(bucket[order], np.arange(self.buckets + 1))
        for b in range(self.buckets):
            recs[order[bounds[b] : bounds[b + 1]]].tofile(outs[b])


# --- stage 2: candidate pairs, per bucket -------------------------------------------------------


def _groups(records: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Records sorted by (key, file_id), and for each its group's first and end positions."""
    records = records[np.lexsort((records["file_id"], records["key"]))]
    keys = records["key"]
    starts = np.ones(len(keys), dtype=bool)
    starts[1:] = keys[1:] != keys[:-1]
    position = np.arange(len(keys))
    first = np.maximum.accumulate(np.where(starts, position, 0))
    ends = np.append(np.flatnonzero(starts)[1:], len(keys))  # per group
    return records, first, ends[np.cumsum(starts) - 1]


def candidate_pairs(
    records: np.ndarray, similar: Callable[[np.ndarray], np.ndarray] | None = None, window: int = 16
) -> tuple[np.ndarray, int, int]:
    """The pairs to join from a bucket's band records (unique, sorted), how many pairs were
    compared and how many of those were kept (both count a pair once per band it shares, so the
    sums over buckets do not depend on the number of buckets).

    Files sharing a key are chained: each paired with the first (smallest ``file_id``) of its
    group, which gives the same components as all pairs with O(n) pairs; without ``similar``
    every chain pair is kept. With it (pairs -> keep mask), a file that fails against its group's
    first is compared with the group's next ``window`` files too and kept with those it passes:
    a bounded stand-in for all pairs (a group of n mutually dissimilar files costs at most
    (window + 1) x n comparisons, not n^2)."""
    records, first, end = _groups(records)
    position = np.arange(len(records))
    later = position != first
    pairs = np.empty(int(later.sum()), dtype=PAIR)
    pairs["a"] = records["file_id"][first[later]]
    pairs["b"] = records["file_id"][later]
    if similar is None or not len(pairs):
        return np.unique(pairs), len(pairs), len(pairs)
    ok = similar(pairs)
    failed = position[later][~ok]
    # (n_failed, window) positions of the group's 2nd..(window+1)th files, where they exist
    other = first[failed, None] + 1 + np.arange(window)
    valid = (other < end[failed, None]) & (other != failed[:, None])
    retry = np.empty(int(valid.sum()), dtype=PAIR)
    retry["a"] = records["file_id"][other[valid]]
    retry["b"] = records["file_id"][np.broadcast_to(failed[:, None], other.shape)[valid]]
    kept = np.concatenate([pairs[ok], retry[similar(retry)]])
    ordered = np.empty(len(kept), dtype=PAIR)  # (smaller, larger): one pair, one way round
    ordered["a"] = np.minimum(kept["a"], kept["b"])
    ordered["b"] = np.maximum(kept["a"], kept["b"])
    return np.unique(ordered), len(pairs) + len(retry), len(kept)


class _Signatures:
    """Signatures of any file, from the shards' ``.npy`` files mapped read-only (the OS keeps
    the pages it needs; nothing is loaded whole)."""

    def __init__(self, dedup_dir: str, num_perm: int):
        self.dedup_dir = dedup_dir
        self.num_perm = num_perm
        self._maps: dict[int, np.ndarray] = {}

    def _map(self, shard: int) -> np.ndarray:
        if shard not in self._maps:
            self._maps[shard] = np.load(signature_path(self.dedup_dir, shard), mmap_mode="r")
        return self._maps[shard]

    def get(self, file_ids: np.ndarray) -> np.ndarray:
        out = np.empty((len(file_ids), self.num_perm), dtype=np.uint32)
        shard = file_ids >> np.uint64(32)
        row = (file_ids & np.uint64(0xFFFFFFFF)).astype(np.int64)
        for s in np.unique(shard):
            mask = shard == s
            out[mask] = self._map(int(s))[row[mask]]
        return out


class MinhashDedupBuckets(PipelineStep):
    """Task ``b`` reads ``bands/<b>/*`` of every shard; writes ``pairs/<b>.bin`` (file_id pairs)
    and ``pairs/<b>.json`` (candidate and kept pair counts)."""

    type = "🫂 - DEDUP"
    name = "🎯 MinHash candidate pairs"
    verify_chunk = 1 << 14  # pairs whose signatures are compared at once (2 x 16 MB at 250 slots)

    def __init__(self, dedup_dir: str, shards: int, config: MinhashConfig | None = None):
        super().__init__()
        self.dedup_dir = str(dedup_dir)
        self.shards = shards
        self.config = config or MinhashConfig()
        self._signatures: _Signatures | None = None

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        parts = []
        for shard in range(self.shards):
            path = band_path(self.dedup_dir, rank, shard)
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing: the MinHash signature pass did not finish")
            parts.append(np.fromfile(path, dtype=BAND_RECORD))
        self._signatures = None  # maps opened by an earlier task may show files since replaced
        with self.track_time():
            records = np.concatenate(parts) if parts else np.zeros(0, BAND_RECORD)
            similar = self._similar if self.config.verify else None
            pairs, compared, kept = candidate_pairs(records, similar)
        self.stat_update("candidate_pairs", value=compared)
        self.stat_update("pairs", value=kept)
        with replacing(pairs_path(self.dedup_dir, rank)) as tmp:
            pairs.tofile(tmp)
        stats = {"candidate_pairs": compared, "pairs": kept}
        _write_json(pairs_path(self.dedup_dir, rank).with_suffix(".json"), stats)
        return iter(())

    def _similar(self, pairs: np.ndarray) -> np.ndarray:
        """Keep mask: the pair's signatures agree on at least ``threshold`` of their slots."""
        if self._signatures is None:
            self._signatures = _Signatures(self.dedup_dir, self.config.num_perm)
        keep = np.zeros(len(pairs), dtype=bool)
        for start in range(0, len(pairs), self.verify_chunk):
            chunk = pairs[start : start + self.verify_chunk]
            sig_a, sig_b = self._signatures.get(chunk["a"]), self._signatures.get(chunk["b"])
            keep[start : start + len(chunk)] = estimated_jaccard(sig_a, sig_b) >= self.config.threshold
        return keep


# --- stage 3: connected components and survivors, one task -------------------------------------


def _find(parent: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Roots of ``x``, halving the paths it walks."""
    while True:
        up = parent[x]
        upup = parent[up]
        if np.array_equal(up, upup):
            return up
        parent[x] = upup
        x = upup


def union_pairs(parent: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """Join the components of ``a[i]`` and ``b[i]``. A root always points to a smaller index, so
    every component's root ends as its smallest member, whatever the order pairs come in."""
    while len(a):
        ra, rb = _find(parent, a), _find(parent, b)
        differ = ra != rb
        if not differ.any():
            return
        a, b, ra, rb = a[differ], b[differ], ra[differ], rb[differ]
        # several roots may hook onto one root in a round: the smallest wins, the rest go round again
        np.minimum.at(parent, np.maximum(ra, rb), np.minimum(ra, rb))


def component_labels(parent: np.ndarray) -> np.ndarray:
    """Every element's root (the smallest index of its component)."""
    labels = parent.copy()
    while True:
        up = labels[labels]
        if np.array_equal(up, labels):
            return labels
        labels = up


def connected_components(n: int, pair_chunks: Iterator[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Labels of ``n`` elements joined by the pairs of index arrays in ``pair_chunks``, consumed
    once, one chunk at a time: memory is one int64 per element plus one chunk, never the pairs."""
    parent = np.arange(n, dtype=np.int64)
    for a, b in pair_chunks:
        union_pairs(parent, np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))
        del a, b  # so the next chunk is read with this one gone
    return component_labels(parent)


class MinhashDedupCluster(PipelineStep):
    """One task: reads every ``pairs/*.bin`` and the shards' metadata (no content); writes
    ``removals/<shard>.parquet`` for every shard and ``stats.json``."""

    type = "🫂 - DEDUP"
    name = "🎯 MinHash clusters"

    def __init__(
        self,
        filtered_dir: str,
        dedup_dir: str,
        shards: int,
        buckets: int,
        config: MinhashConfig | None = None,
    ):
        super().__init__()
        self.filtered_dir = str(filtered_dir)
        self.dedup_dir = str(dedup_dir)
        self.shards = shards
        self.buckets = buckets
        self.config = config or MinhashConfig()

    def _pair_chunks(self, offsets: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for bucket in range(self.buckets):
            path = pairs_path(self.dedup_dir, bucket)
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing: the MinHash pair pass did not finish")
            for chunk in iter_pairs(path):
                yield _dense(chunk["a"], offsets), _dense(chunk["b"], offsets)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if rank != 0:
            return iter(())
        rows = np.array([shard_rows(self.filtered_dir, s) for s in range(self.shards)], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(rows)])
        with self.track_time():
            labels = connected_components(int(offsets[-1]), self._pair_chunks(offsets))
        sizes = np.bincount(labels, minlength=len(labels))
        clustered = sizes[labels] >= 2

        # pass 1 over the shards' metadata: the best-ranked member of every component, as
        # (*rank_key, index): [4] and [5] are its repo_name and path, [-1] its index
        best: dict[int, tuple] = {}
        cluster_language: dict[int, str] = {}  # every member has it: band keys hold the language
        for shard, records in self._members(offsets, clustered):
            for row, rec in records:
                idx = int(offsets[shard]) + row
                key = (*rank_key(rec), idx)
                root = int(labels[idx])
                if root not in best or key < best[root]:
                    best[root] = key
                    cluster_language[root] = rec[F.LANGUAGE] or ""
        # pass 2: every other member is removed, naming its survivor
        removed_by_language: dict[str, Counter] = {}
        for shard, records in self._members(offsets, clustered):
            file_ids, details = [], []
            for row, rec in records:
                idx = int(offsets[shard]) + row
                survivor = best[int(labels[idx])]
                if survivor[-1] == idx:
                    continue
                file_ids.append((shard << 32) | row)
                details.append(survivor_name(survivor[4], survivor[5]))
                lang = removed_by_language.setdefault(rec[F.LANGUAGE] or "", Counter())
                lang["removed"] += 1
                lang["bytes_removed"] += rec[F.LENGTH_BYTES] or 0
            write_removals(removal_path(self.dedup_dir, shard), np.array(file_ids, dtype=np.uint64), details)
            self.stat_update("removed", value=len(file_ids))
        for language in cluster_language.values():
            removed_by_language.setdefault(language, Counter())["clusters"] += 1
        self._write_stats(labels, sizes, clustered, removed_by_language)
        return iter(())

    def _members(self, offsets: np.ndarray, clustered: np.ndarray) -> Iterator[tuple[int, list]]:
        """Per shard, the (row, metadata) of its files that are in a component of 2 or more."""
        columns = [*RANK_INPUTS, F.LANGUAGE, F.LENGTH_BYTES]
        for shard in range(self.shards):
            rows = np.flatnonzero(clustered[offsets[shard] : offsets[shard + 1]])
            if not len(rows):
                yield shard, []
                continue
            table = pq.read_table(shard_path(self.filtered_dir, shard), columns=columns).take(rows)
            yield shard, list(zip(rows.tolist(), table.to_pylist(), strict=True))

    def _write_stats(self, labels, sizes, clustered, removed_by_language) -> None:
        roots = np.flatnonzero((labels == np.arange(len(labels))) & (sizes >= 2))
        histogram = Counter(sizes[roots].tolist())
        signing: Counter = Counter()
        languages: dict[str, Counter] = {}
        for shard in range(self.shards):
            part = json.loads(signature_path(self.dedup_dir, shard).with_suffix(".json").read_text())
            for name, lang in part.pop("languages").items():
                languages.setdefault(name, Counter()).update(lang)
            signing.update(part)
        pair_counts: Counter = Counter()
        for bucket in range(self.buckets):
            path = pairs_path(self.dedup_dir, bucket).with_suffix(".json")
            pair_counts.update(json.loads(path.read_text()))
        for name, lang in removed_by_language.items():
            languages.setdefault(name, Counter()).update(lang)
        stats = {
            "config": asdict(self.config),
            **{k: signing[k] for k in ("files", "signed", "skipped_short", "skipped_exact_duplicate")},
            **dict(pair_counts),
            "clusters": len(roots),
            "files_in_clusters": int(clustered.sum()),
            "removed": sum(v["removed"] for v in removed_by_language.values()),
            "bytes_removed": sum(v["bytes_removed"] for v in removed_by_language.values()),
            "cluster_sizes": {str(k): v for k, v in sorted(histogram.items())},
            "languages": {k: dict(sorted(v.items())) for k, v in sorted(languages.items())},
        }
        _write_json(stats_path(self.dedup_dir), stats)


def _dense(file_ids: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """file_id (shard << 32 | row) -> index over all files of all shards."""
    shard = (file_ids >> np.uint64(32)).astype(np.int64)
    return offsets[shard] + (file_ids & np.uint64(0xFFFFFFFF)).astype(np.int64)
