"""Issues and pull requests as part records (``data/parts``): the last step of their intake.

Every thread, kept or removed, gets the part columns: ``id`` ``owner/repo#N``, ``repo_name``,
``path`` as GitHub's URL path (``issues/N``, ``pull/N``: with the repository it names the page),
``number`` N, ``source`` ``gharchive``; a PR also ``metadata`` ``{"merged": ...}`` and its
repository's license (``gha_license_id``, GitHub's SPDX id) and class (``license_type``). ``blob_id`` and
``length_bytes`` come from the rendered text; a removed thread has no text, its ``length_bytes``
stays the size of its events' texts. The bulky thread state (events, files) is dropped here.
"""

from __future__ import annotations

from collections.abc import Iterator

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from stackcoder.data import fields as F
from stackcoder.data.gharchive.events import ISSUE_KIND
from stackcoder.data.gharchive.partition import NUMBER
from stackcoder.data.gharchive.pr_filters import license_class
from stackcoder.data.parts.records import record
from stackcoder.data.step import is_removed

SOURCE = "gharchive"
_REMOVAL = (F.REMOVED_STAGE, F.REMOVED_REASON, F.REMOVED_DETAIL)


class ThreadRecords(PipelineStep):
    type = "🧱 STACKCODER"

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.name = f"🧾 {kind} records"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        url_part = "issues" if self.kind == ISSUE_KIND else "pull"
        for doc in data:
            with self.track_time():
                meta = doc.metadata
                number = meta[NUMBER]
                columns = {F.NUMBER: number}
                if self.kind != ISSUE_KIND and meta.get("license") is not None:
                    columns[F.HOST_LICENSE] = meta["license"]
                    columns[F.LICENSE_TYPE] = license_class(meta["license"])
                extra = {"merged": bool(meta["merged"])} if "merged" in meta else None
                rec = record(
                    doc.text,
                    id=doc.id,
                    source=SOURCE,
                    repo_name=meta[F.REPO_NAME],
                    path=f"{url_part}/{number}",
                    metadata=extra,
                    **columns,
                )
                if is_removed(doc):
                    rec.metadata[F.LENGTH_BYTES] = meta.get(F.LENGTH_BYTES) or 0
                    rec.metadata.update({k: meta[k] for k in _REMOVAL if k in meta})
                doc.metadata = rec.metadata
            yield doc
