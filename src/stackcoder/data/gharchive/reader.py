"""Read GHArchive dumps (``stackcoder build --events FILE.json.gz``): one ``Document`` per issue or
pull-request event, in the shape ``events.normalize`` gives (recipe.md §6).

Files are shared over tasks by index. Nothing malformed stops a task: a line that is not JSON, not
an Events-API event, of another type or without the object it is about is counted by reason
(``skipped_<reason>``); a truncated or non-gzip file keeps the events read before the damage and
counts the file (``skipped_truncated_gzip``, ``skipped_not_gzip``). ``input_bytes`` counts the
uncompressed bytes of every line, for MB/s figures.
"""

from __future__ import annotations

from collections.abc import Iterator

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from stackcoder.data import fields as F
from stackcoder.data.gharchive.events import event_text_bytes, iter_dump, normalize

EVENT = "event"  # metadata key: the normalized event (events.Event)


class EventReader(PipelineStep):
    type = "📖 - READER"
    name = "🐙 GHArchive events"

    def __init__(self, files: list[str]):
        super().__init__()
        self.files = [str(f) for f in files]

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        for index, path in enumerate(self.files):
            if index % world_size != rank:
                continue
            self.stat_update("files")
            for n_bytes, raw in iter_dump(path):
                with self.track_time():
                    if isinstance(raw, str):  # a reason: the line or the file is damaged
                        self.stat_update(f"skipped_{raw}")
                        self.stat_update("input_bytes", value=n_bytes)
                        if n_bytes:
                            self.stat_update("lines")
                        continue
                    self.stat_update("lines")
                    self.stat_update("input_bytes", value=n_bytes)
                    event = normalize(raw)
                    if isinstance(event, str):
                        self.stat_update(f"skipped_{event}")
                        continue
                    self.stat_update(f"events_{event['type']}")
                    n_text = event_text_bytes(event)
                    doc = Document(
                        text="",
                        id=event["id"] or f"{path}:{self.stats['lines'].total}",
                        metadata={EVENT: event, F.REPO_NAME: event["repo"], F.LENGTH_BYTES: n_text},
                    )
                yield doc
