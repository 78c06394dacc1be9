"""``NotebookExtractor``: in the file filter pass, every ``.ipynb`` file also becomes a record of
``jupyter_scripts`` and (Python notebooks) of ``jupyter_structured`` (recipe.md §6).

It runs after license detection, so a record carries its file's license, and applies the file's
license rule to it (the repository's rule, ``LicenseFilter``: a notebook of a non-permissive
repository is removed from both parts, reason ``non_permissive``). The file itself passes on, and
whether its JSON stays in ``files/`` is then the file filters' business: The Stack v2 keeps
"Jupyter Notebook" as a language (recipe.md §1 drops none by name). With ``keep_files=False``
(recipe ``[jupyter] keep_notebook_files``) the file is removed here instead (stage ``jupyter``,
reason ``notebook_converted``). Notebooks of opted-out repositories give nothing. Every other
notebook gives one record per part, kept or removed with its reason (stage ``extract``:
``invalid_json``, ``invalid_notebook``, ``unknown_language``, ``not_python``, ``file_removed`` for a
file an earlier stage removed, ...), written as the part's intake (``PartSink``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from stackcoder.data import fields as F
from stackcoder.data.jupyter.notebook import (
    MAX_OUTPUT_CHARS,
    NotebookError,
    parse_notebook,
    script_language,
    script_text,
    structured_text,
)
from stackcoder.data.license import LicenseFilter
from stackcoder.data.parts.passes import PartLayout
from stackcoder.data.parts.records import record
from stackcoder.data.parts.writer import PartSink
from stackcoder.data.step import is_removed, mark_removed
from stackcoder.data.writer import OPT_OUT_STAGE

STAGE = "extract"  # the parts' stage for what extraction removes
FILE_STAGE = "jupyter"  # the files' stage, with keep_files=False
SCRIPTS = "jupyter_scripts"
STRUCTURED = "jupyter_structured"
# the file columns a notebook's records carry over from its file
_CARRIED = (
    F.DETECTED_LICENSES,
    F.LICENSE_TYPE,
    F.REVISION_ID,
    F.REVISION_DATE,
    F.STARS,
    F.FORKS,
    F.HOST_LICENSE,
)


def is_notebook(doc: Document) -> bool:
    return (doc.metadata.get(F.PATH) or "").lower().endswith(".ipynb")


def _script_language_name(extension: str, script: str) -> str | None:
    """The Linguist name of the script's language (enry on the extension and, where the extension
    is ambiguous like ``.m``, the content), the same names files carry."""
    from stackcoder.data.language import enry

    return enry().get_language(f"notebook{extension}", script.encode("utf-8", "replace")) or None


def notebook_texts(
    text: str, max_output_chars: int = MAX_OUTPUT_CHARS, header: bool = False
) -> tuple[dict[str, str | NotebookError], dict[str, Any]]:
    """Per part, the notebook's text or why it has none; and what to record about the notebook."""
    try:
        nb, facts = parse_notebook(text)
        language = script_language(nb, facts)
    except NotebookError as e:
        return {SCRIPTS: e, STRUCTURED: e}, {}
    facts = {**facts, "language_source": language.source, "extension": language.extension}
    texts: dict[str, str | NotebookError] = {}
    # structured first: jupytext may normalise the cells it writes
    if language.extension == ".py":
        try:
            texts[STRUCTURED] = structured_text(nb, max_output_chars)
        except NotebookError as e:
            texts[STRUCTURED] = e
    else:
        texts[STRUCTURED] = NotebookError("not_python", language.extension)
    try:
        texts[SCRIPTS] = script_text(nb, language, header)
    except NotebookError as e:
        texts[SCRIPTS] = e
    return texts, facts


class NotebookExtractor(PipelineStep):
    """Writes each notebook's part records; passes every file on unchanged."""

    type = "📓 - JUPYTER"
    name = "📓 Notebooks"

    def __init__(
        self,
        parts: list[PartLayout],
        keep_classes: list[str] | tuple[str, ...] = (F.PERMISSIVE, F.NO_LICENSE),
        max_output_chars: int = MAX_OUTPUT_CHARS,
        script_header: bool = False,
        keep_files: bool = True,
    ):
        """``parts``: the layouts of ``jupyter_scripts`` and/or ``jupyter_structured``."""
        super().__init__()
        unknown = {p.name for p in parts} - {SCRIPTS, STRUCTURED}
        if unknown:
            raise ValueError(f"not notebook parts: {sorted(unknown)}")
        self.parts = list(parts)
        self.license_filter = LicenseFilter(keep_classes=list(keep_classes))
        self.max_output_chars = max_output_chars
        self.script_header = script_header
        self.keep_files = keep_files
        # a stage in the files' funnel only when it removes files
        self.stage = "" if keep_files else FILE_STAGE

    def records(self, doc: Document) -> dict[str, Document]:
        """The file's record per part (removed ones marked with stage and reason)."""
        meta = doc.metadata
        base = {k: meta.get(k) for k in _CARRIED}
        notebook = {"notebook_blob_id": meta.get(F.BLOB_ID), "notebook_bytes": meta.get(F.LENGTH_BYTES)}
        if is_removed(doc):  # too large, undecodable, an excluded language: nothing (or no license) to use
            removed = NotebookError("file_removed", f"{meta[F.REMOVED_STAGE]}:{meta.get(F.REMOVED_REASON)}")
            texts: dict[str, Any] = {p.name: removed for p in self.parts}
            facts: dict[str, Any] = {}
        else:
            texts, facts = notebook_texts(doc.text, self.max_output_chars, self.script_header)
        out = {}
        for part in self.parts:
            result = texts[part.name]
            text = "" if isinstance(result, NotebookError) else result
            language = None
            if part.name == STRUCTURED and text:
                language = "Python"
            elif text:
                language = _script_language_name(facts["extension"], text)
            rec = record(
                text,
                id=doc.id,
                source=meta.get(F.SOURCE) or "",
                repo_name=meta.get(F.REPO_NAME),
                path=meta.get(F.PATH),
                language=language,
                metadata={**notebook, **facts},
                **base,
            )
            if isinstance(result, NotebookError):
                mark_removed(rec, STAGE, result.reason, result.detail or None)
            elif reason := self.license_filter.process(rec):
                mark_removed(rec, self.license_filter.stage, reason)
            out[part.name] = rec
        return out

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> Iterator[Document]:
        with contextlib.ExitStack() as stack:
            sinks = {
                p.name: stack.enter_context(PartSink(str(p.filtered), str(p.removed), "intake", rank))
                for p in self.parts
            }
            for doc in data:
                if is_notebook(doc) and doc.metadata.get(F.REMOVED_STAGE) != OPT_OUT_STAGE:
                    self.stat_update("notebooks")
                    self.stat_update("notebook_bytes", value=doc.metadata.get(F.LENGTH_BYTES) or 0)
                    with self.track_time():
                        records = self.records(doc)
                        for name, rec in records.items():
                            where = sinks[name].write(rec)
                            reason = rec.metadata.get(F.REMOVED_REASON)
                            self.stat_update(f"{name}_{where}" + (f"_{reason}" if reason else ""))
                    if not self.keep_files and not is_removed(doc):
                        mark_removed(doc, FILE_STAGE, "notebook_converted")
                        self.stat_update("files_removed")
                yield doc
