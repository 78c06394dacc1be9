"""``stackcoder index optout``: take opted-out repositories out of a built index, so queries and
searches no longer find their content.

Neither structure deletes in place for real: a Bloom filter cannot forget an n-gram without
forgetting others, and tantivy only marks deleted documents (their text stays in the segment files
until a merge). So every shard that held such a repository is rebuilt from the files it keeps — read
back from its tantivy shard, which stores them — and replaces the old one whole; shards that did not
hold any are left as they are. Like the build, the index records the list only as a count and a
digest, never the names.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from stackcoder.data import fields as F
from stackcoder.data.optout import OptOutMatcher, merge_optout
from stackcoder.errors import UserError
from stackcoder.index.build import INDEX_JSON, read_index_json, summarize, write_index_shard
from stackcoder.index.fulltext import TextIndex
from stackcoder.index.portrait import Portrait


def apply_optout(root: str | Path, patterns: list[str], progress: bool = True) -> dict[str, Any]:
    """Rebuild the shards of ``root`` that hold a repository matching ``patterns``; returns counts."""
    root = Path(root)
    read_index_json(root)
    patterns = merge_optout(patterns)
    if not patterns:
        raise UserError("the opt-out list is empty: nothing to remove")
    matcher = OptOutMatcher(patterns)
    portrait, text = Portrait(root / "portrait"), TextIndex(root / "text")
    affected = []
    for meta_file, meta in zip(sorted((root / "portrait").glob("*.json")), portrait.shards_meta, strict=True):
        hit = [r for r in meta["repositories"] if matcher.matches(r)]
        if hit:
            affected.append((meta_file.stem, meta, hit))
    del portrait  # the shards about to be replaced must not stay mapped
    removed_repos = removed_files = 0
    for i, (name, meta, hit) in enumerate(affected, 1):
        if progress:
            print(f"rebuilding shard {name} ({i}/{len(affected)})", flush=True)
        kept = [f for f in text.documents(name) if not matcher.matches(f[F.REPO_NAME])]
        removed_files += meta["files"] - len(kept)
        removed_repos += len(hit)
        capacity = meta["capacity"] if meta.get("fixed_capacity") else None
        write_index_shard(root, name, iter(kept), capacity, meta["target_fpr"])
    index = json.loads((root / INDEX_JSON).read_text())
    applied = index.get("opt_out", {}).get("lists", [])
    applied.append(
        {
            "patterns": len(patterns),
            "sha256": hashlib.sha256("\n".join(patterns).encode()).hexdigest(),
            "repositories_removed": removed_repos,
            "files_removed": removed_files,
            "shards_rebuilt": len(affected),
        }
    )
    index["opt_out"] = {"applied": len(applied), "lists": applied}
    (root / INDEX_JSON).write_text(json.dumps(index, indent=2) + "\n")
    summarize(root)
    return applied[-1]
