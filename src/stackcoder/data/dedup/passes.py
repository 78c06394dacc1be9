"""The dedup passes in the order they run, the final pass's filters, and the stats for the card.

``dedup_passes`` turns the recipe's ``[dedup.exact]`` and ``[dedup.near]`` into datatrove passes
over ``work/filtered/`` (part 1's kept files, one shard per task); each pass must complete before
the next starts. A disabled dedup has no passes and its filter removes nothing.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from stackcoder.data.dedup import exact, minhash
from stackcoder.data.dedup.exact import ExactDedupBuckets, ExactDedupRecords
from stackcoder.data.dedup.filter import DedupFilter, ExactDedupFilter, NearDedupFilter
from stackcoder.data.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupSignature,
)
from stackcoder.data.executor import Pass


def dedup_dir(work_dir: str | Path) -> Path:
    return Path(work_dir) / "dedup"


def dedup_passes(work_dir: str | Path, shards: int, buckets: int, recipe: dict[str, Any]) -> list[Pass]:
    """The passes that decide what exact and near dedup remove, in order.

    ``work_dir`` holds ``filtered/<shard>.parquet`` (``shards`` of them, some may be missing when a
    task kept nothing); everything is written under ``work_dir/dedup/``. ``buckets`` splits the
    per-bucket passes; it changes how work is shared, never which files are removed.
    """
    if shards < 1 or buckets < 1:
        raise ValueError(f"shards and buckets must be at least 1 (got {shards}, {buckets})")
    filtered, out = str(Path(work_dir) / "filtered"), str(dedup_dir(work_dir))
    exact_on, near = recipe["dedup"]["exact"]["enabled"], recipe["dedup"]["near"]
    passes = []
    if exact_on:
        passes += [
            Pass("exact_records", [ExactDedupRecords(filtered, out, buckets)], shards),
            Pass("exact_buckets", [ExactDedupBuckets(out, shards)], buckets),
        ]
    if near["enabled"]:
        config = MinhashConfig.from_recipe(near)
        # files exact dedup removes are not signed: they cannot be a component's survivor
        signatures = MinhashDedupSignature(filtered, out, buckets, config, buckets if exact_on else 0)
        passes += [
            Pass("near_signatures", [signatures], shards),
            Pass("near_buckets", [MinhashDedupBuckets(out, shards, config)], buckets),
            Pass("near_clusters", [MinhashDedupCluster(filtered, out, shards, buckets, config)], 1),
        ]
    return passes


def dedup_filters(work_dir: str | Path, buckets: int, recipe: dict[str, Any]) -> list[DedupFilter]:
    """The final pass's steps, right after ``ShardReader``: exact, then near."""
    out = str(dedup_dir(work_dir))
    return [
        ExactDedupFilter(out, buckets, enabled=recipe["dedup"]["exact"]["enabled"]),
        NearDedupFilter(out, enabled=recipe["dedup"]["near"]["enabled"]),
    ]


def _merge(into: dict[str, Any], part: dict[str, Any]) -> None:
    """Add ``part``'s counts into ``into``, recursively (histograms and per-language tables)."""
    for key, value in part.items():
        if isinstance(value, dict):
            _merge(into.setdefault(key, {}), value)
        else:
            into[key] = into.get(key, 0) + value


def dedup_stats(work_dir: str | Path) -> dict[str, Any]:
    """What each dedup found, for the dataset card (None for a dedup that did not run):

    ``{"exact": {files, clusters, files_in_clusters, removed, bytes_removed, cluster_sizes:
    {size: clusters}, languages: {language: {clusters, removed, bytes_removed}}}, "near": the same
    plus config, signed, skipped_short, skipped_exact_duplicate, candidate_pairs, pairs}``.
    """
    root = dedup_dir(work_dir)
    exact_stats: dict[str, Any] | None = None
    for path in sorted((exact.exact_dir(root) / "stats").glob("*.json")):
        exact_stats = exact_stats if exact_stats is not None else {}
        _merge(exact_stats, json.loads(path.read_text()))
    if exact_stats is not None:
        sizes = Counter({int(k): v for k, v in exact_stats.get("cluster_sizes", {}).items()})
        exact_stats["cluster_sizes"] = {str(k): sizes[k] for k in sorted(sizes)}
        exact_stats["languages"] = dict(sorted(exact_stats.get("languages", {}).items()))
    near_path = minhash.stats_path(root)
    near_stats = json.loads(near_path.read_text()) if near_path.is_file() else None
    return {"exact": exact_stats, "near": near_stats}
