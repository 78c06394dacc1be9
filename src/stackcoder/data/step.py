"""The contract every recipe step follows: live files are processed, removed files pass through.

A removed file is not dropped from the stream: it is marked with the stage and reason that removed
it and flows on untouched to the final writer, which sends it to ``removed/``. That way one writer
sees every file, nothing is lost silently, and ``seen = kept + removed`` holds per source and per
stage by construction (a test checks it against an independent listing of the sources).

Each step keeps datatrove's counters: ``total``, ``forwarded``, ``dropped``, ``dropped_<reason>``,
plus ``bytes_in`` / ``bytes_dropped``; the executor merges them into the run's stats.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from stackcoder.data import fields as F


def is_removed(doc: Document) -> bool:
    return bool(doc.metadata.get(F.REMOVED_STAGE))


def mark_removed(doc: Document, stage: str, reason: str, detail: str | None = None) -> None:
    doc.metadata[F.REMOVED_STAGE] = stage
    doc.metadata[F.REMOVED_REASON] = reason
    if detail is not None:
        doc.metadata[F.REMOVED_DETAIL] = detail


class FileStep(PipelineStep):
    """Base of every step between the reader and the writer.

    Subclasses set ``stage`` (the word used in removal records and stats) and implement
    ``process``, which may edit the file's metadata and returns a removal reason or None.
    Steps that need more than one file at a time (license detection groups by repository)
    override ``run`` and call ``account`` once per live file.
    """

    type = "🧱 STACKCODER"
    stage: ClassVar[str] = ""

    def process(self, doc: Document) -> str | tuple[str, str] | None:
        """Return None to keep the file, a reason, or ``(reason, detail)`` to remove it."""
        raise NotImplementedError

    def account(self, doc: Document, verdict: str | tuple[str, str] | None) -> None:
        n_bytes = doc.metadata.get(F.LENGTH_BYTES) or 0
        self.stat_update("total")
        self.stat_update("bytes_in", value=n_bytes, unit="file")
        if verdict is None:
            self.stat_update("forwarded")
            return
        reason, detail = verdict if isinstance(verdict, tuple) else (verdict, None)
        mark_removed(doc, self.stage, reason, detail)
        self.stat_update("dropped", f"dropped_{reason}")
        self.stat_update("bytes_dropped", value=n_bytes, unit="file")

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        for doc in data:
            if is_removed(doc):
                yield doc
                continue
            with self.track_time():
                verdict = self.process(doc)
            self.account(doc, verdict)
            yield doc


class FileFilter(FileStep):
    """A step that only decides keep or remove: implement ``filter``, datatrove-style.

    ``filter`` returns True to keep, or ``(False, reason)`` to remove.
    """

    type = "🔻 FILTER"

    def filter(self, doc: Document) -> bool | tuple[bool, str]:
        raise NotImplementedError

    def process(self, doc: Document) -> str | None:
        result = self.filter(doc)
        if result is True:
            return None
        if isinstance(result, tuple):
            return result[1]
        return self.stage  # a bare False: the stage name is the reason
