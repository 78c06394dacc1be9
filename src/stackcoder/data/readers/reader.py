"""``RepositoryReader``: the first step of ``stackcoder build``, one ``Document`` per file of every
repository (recipe.md §1, "Input").

Each rank reads whole repositories: sources are sorted by size, largest first, and dealt out
round-robin, so no repository is split across tasks and the big ones start first. Within a
repository the license-like files come first, then the rest by path. Skipped files (too large,
binary, undecodable, unsafe archive members, ...) are yielded too, marked removed with their
reason, so the writer accounts for every file.
"""

from __future__ import annotations

from collections.abc import Iterator

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from stackcoder.data import fields as F
from stackcoder.data.readers.archive import iter_archive
from stackcoder.data.readers.decoding import decode
from stackcoder.data.readers.directory import iter_directory
from stackcoder.data.readers.git import iter_git
from stackcoder.data.readers.raw import RawFile
from stackcoder.data.readers.sources import Source
from stackcoder.data.readers.table import iter_table
from stackcoder.data.step import mark_removed

STAGE = "ingest"


class RepositoryReader(PipelineStep):
    name = "📂 Repositories"
    type = "📖 - READER"

    def __init__(
        self,
        sources: list[Source],
        max_file_bytes: int = 10_000_000,  # "files under 10 MB" (recipe.md §1)
        max_archive_bytes: int = 8_000_000_000,  # ours: decompression-bomb caps (recipe.toml [ingest])
        max_archive_members: int = 2_000_000,
        charset_detection: bool = True,
    ):
        super().__init__()
        self.sources = list(sources)
        self.max_file_bytes = max_file_bytes
        self.max_archive_bytes = max_archive_bytes
        self.max_archive_members = max_archive_members
        self.charset_detection = charset_detection

    def assigned(self, rank: int = 0, world_size: int = 1) -> list[Source]:
        """This rank's sources: largest first, dealt round-robin (ties broken by label)."""
        return sorted(self.sources, key=lambda s: (-s.size_bytes, s.label))[rank::world_size]

    def files(self, source: Source) -> Iterator[RawFile]:
        if source.kind == "dir":
            return iter_directory(source.path, self.max_file_bytes)
        if source.kind == "git":
            return iter_git(source.path, self.max_file_bytes, stat=self.stat_update)
        if source.kind == "archive":
            return iter_archive(
                source.path, self.max_file_bytes, self.max_archive_bytes, self.max_archive_members
            )
        if source.kind == "table":
            return iter_table(source.path, self.max_file_bytes)
        raise ValueError(f"unknown source kind {source.kind!r}")

    def document(self, source: Source, raw: RawFile) -> Document:
        """The file as the later steps see it; a skipped file has empty text and is marked removed."""
        text, encoding, reason = "", None, raw.skip_reason
        if reason is None and raw.data is not None:
            text, encoding, reason = decode(raw.data, self.charset_detection)
        repo_name = raw.repo_name or source.repo_name
        repo = source.metadata  # repository-level defaults from --repo-metadata
        metadata = {
            F.BLOB_ID: raw.blob_id,
            F.REPO_NAME: repo_name,
            F.PATH: raw.path,
            F.LENGTH_BYTES: raw.size,
            F.SRC_ENCODING: encoding,
            F.REVISION_ID: raw.revision_id,
            F.REVISION_DATE: raw.revision_date or repo.get(F.REVISION_DATE),  # the commit's date wins
            F.STARS: repo.get(F.STARS),
            F.FORKS: repo.get(F.FORKS),
            F.HOST_LICENSE: repo.get(F.HOST_LICENSE),
            F.SOURCE: source.label,
        }
        metadata.update(raw.columns)  # a table's own labels and counts win over the defaults
        doc = Document(text=text, id=f"{repo_name}:{raw.path}", metadata=metadata)
        if reason:
            metadata[F.SRC_ENCODING] = None  # no content: nothing was decoded
            mark_removed(doc, STAGE, reason)
        return doc

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        for source in self.assigned(rank, world_size):
            self.stat_update("sources")
            files = self.files(source)
            while True:
                with self.track_time():
                    raw = next(files, None)
                    if raw is None:
                        break
                    doc = self.document(source, raw)
                    self.stat_update("files")
                    self.stat_update("bytes", value=raw.size, unit="file")
                    if reason := doc.metadata.get(F.REMOVED_REASON):
                        self.stat_update(f"skipped_{reason}")
                yield doc
