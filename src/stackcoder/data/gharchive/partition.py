"""Hand events from the reading pass to the per-thread passes: bucketed by repository on disk,
then grouped per issue or pull request (recipe.md §6: "events grouped per issue").

An issue's events are spread over many hourly dumps, so grouping needs all of them in one place.
``EventPartitioner`` (the last step of the events pass) writes each live event as a JSON line to
``<work>/<kind>/<bucket>/<task>.jsonl``, where the bucket is a stable hash of the repository name:
every event of a repository lands in one bucket, so per-repository counts (PR sampling) are local
to a task. ``ThreadReader`` (the first step of the issues or pull-requests pass, one bucket per
task) reads a bucket, drops duplicate events (the same event id twice, as dumps overlapping in
time have), and yields one document per thread with its events sorted by time.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import orjson
import xxhash
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from stackcoder.data import fields as F
from stackcoder.data.gharchive.events import ISSUE_KIND, PR_KIND, Event, event_text_bytes
from stackcoder.data.gharchive.reader import EVENT
from stackcoder.data.step import is_removed

NUMBER = "number"  # metadata key and output column: the issue or pull request number
EVENTS = "events"  # metadata key: a thread's events, sorted by time


def bucket_of(repo: str, buckets: int) -> int:
    """Stable over runs and machines (not Python's salted ``hash``): the output never depends on it,
    but resuming a build needs each repository in the bucket it was in."""
    return xxhash.xxh64_intdigest(repo.lower()) % buckets


def _event_order(event: Event) -> tuple:
    # GHArchive times have one-second resolution; event ids grow with time and break the ties
    event_id = event.get("id") or ""
    return (event.get("at") or "", len(event_id), event_id)


class EventPartitioner(PipelineStep):
    type = "💽 WRITER"
    name = "🗂 events by repository"

    def __init__(self, work_dir: str, buckets: int):
        super().__init__()
        self.work_dir = str(work_dir)
        self.buckets = buckets

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        files: dict[tuple[str, int], object] = {}
        try:
            for doc in data:
                if is_removed(doc):  # opted out: written nowhere, counted by the opt-out step
                    yield doc
                    continue
                with self.track_time():
                    event = doc.metadata[EVENT]
                    key = (event["kind"], bucket_of(event["repo"], self.buckets))
                    out = files.get(key)
                    if out is None:
                        folder = Path(self.work_dir, key[0], f"{key[1]:05d}")
                        folder.mkdir(parents=True, exist_ok=True)
                        # a rerun of this task rewrites its own file: resuming never duplicates events
                        out = files[key] = open(folder / f"{rank:05d}.jsonl", "wb")  # noqa: SIM115
                    out.write(orjson.dumps(event) + b"\n")
                    self.stat_update(f"written_{event['kind']}")
                yield doc
        finally:
            for out in files.values():
                out.close()


class ThreadReader(PipelineStep):
    """One document per issue or pull request of bucket ``rank``: metadata ``repo_name``, ``number``,
    ``events``; ``length_bytes`` is the UTF-8 size of the events' texts."""

    type = "📖 - READER"

    def __init__(self, work_dir: str, kind: str):
        super().__init__()
        if kind not in (ISSUE_KIND, PR_KIND):
            raise ValueError(f"kind must be {ISSUE_KIND} or {PR_KIND}, not {kind!r}")
        self.work_dir = str(work_dir)
        self.kind = kind
        self.name = f"🧵 {kind} threads"

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        folder = Path(self.work_dir, self.kind, f"{rank:05d}")
        threads: dict[tuple[str, int], dict[str, Event]] = defaultdict(dict)
        names: dict[str, str] = {}
        with self.track_time():
            for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
                with open(path, "rb") as f:
                    for line in f:
                        event = orjson.loads(line)
                        repo = event["repo"].lower()  # GitHub names are case-insensitive
                        names.setdefault(repo, event["repo"])
                        thread = threads[(repo, event["number"])]
                        key = event["id"] or orjson.dumps(event).decode()
                        if key in thread:
                            self.stat_update("duplicate_events")
                        thread[key] = event
        for (repo, number), by_id in sorted(threads.items()):
            with self.track_time():
                events = sorted(by_id.values(), key=_event_order)
                self.stat_update("threads")
                doc = Document(
                    text="",
                    id=f"{names[repo]}#{number}",
                    metadata={
                        F.REPO_NAME: names[repo],
                        NUMBER: number,
                        EVENTS: events,
                        F.LENGTH_BYTES: sum(event_text_bytes(e) for e in events),
                    },
                )
            yield doc


def bucket_files(work_dir: str, kind: str) -> list[str]:
    """Every event file of one kind (for tests and stats)."""
    root = os.path.join(work_dir, kind)
    return sorted(str(p) for p in Path(root).glob("*/*.jsonl")) if os.path.isdir(root) else []
