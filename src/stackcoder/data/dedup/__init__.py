"""Exact and near deduplication (recipe.md §1 stages 4-5), as datatrove passes over part 1's shards."""

from stackcoder.data.dedup.exact import ExactDedupBuckets, ExactDedupRecords
from stackcoder.data.dedup.filter import DedupFilter, ExactDedupFilter, NearDedupFilter
from stackcoder.data.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupSignature,
)
from stackcoder.data.dedup.passes import Pass, dedup_filters, dedup_passes, dedup_stats
from stackcoder.data.dedup.ranking import rank_key

__all__ = [
    "DedupFilter",
    "ExactDedupBuckets",
    "ExactDedupFilter",
    "ExactDedupRecords",
    "MinhashConfig",
    "MinhashDedupBuckets",
    "MinhashDedupCluster",
    "MinhashDedupSignature",
    "NearDedupFilter",
    "Pass",
    "dedup_filters",
    "dedup_passes",
    "dedup_stats",
    "rank_key",
]
