"""``NotebookExtractor`` on its own: the records it writes, and the file it passes on."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from helpers import make_file
from stackcoder.data import fields as F
from stackcoder.data.jupyter.extractor import SCRIPTS, STRUCTURED, NotebookExtractor
from stackcoder.data.parts import PartLayout
from stackcoder.data.step import mark_removed

pytest.importorskip("jupytext", reason="jupytext is not installed")

NOTEBOOK = Path(__file__).parents[2] / "fixtures" / "notebooks" / "jupytext" / "jupyter.ipynb"


def labeled(text: str, path: str, **meta) -> object:
    return make_file(text, path=path, **{F.LICENSE_TYPE: "permissive", F.DETECTED_LICENSES: ["MIT"], **meta})


def test_records_written_and_files_passed_on(tmp_path):
    layouts = [PartLayout(tmp_path, SCRIPTS), PartLayout(tmp_path, STRUCTURED)]
    step = NotebookExtractor(layouts, keep_files=False)
    assert step.stage == "jupyter"  # it removes files, so it is a stage of the files' funnel
    docs = [
        labeled(NOTEBOOK.read_text(), "nb/jupyter.ipynb"),
        labeled("print(1)\n", "main.py"),
        labeled(NOTEBOOK.read_text(), "optout.ipynb"),
        labeled("", "big.ipynb"),
    ]
    mark_removed(docs[2], "opt_out", "opted_out")
    mark_removed(docs[3], "ingest", "too_large")
    out = list(step.run(iter(docs), rank=3))
    assert out == docs
    assert (out[0].metadata[F.REMOVED_STAGE], out[0].metadata[F.REMOVED_REASON]) == (
        "jupyter",
        "notebook_converted",
    )
    assert F.REMOVED_STAGE not in out[1].metadata
    for layout in layouts:
        (kept,) = pq.read_table(layout.filtered / "00003.parquet").to_pylist()
        assert (kept[F.RECORD_ID], kept[F.LICENSE_TYPE], kept[F.PATH]) == (
            "owner/repo:nb/jupyter.ipynb",
            "permissive",
            "nb/jupyter.ipynb",
        )
        assert kept[F.CONTENT].endswith("<|endoftext|>")  # a work shard: the text under `content`
        (removed,) = pq.read_table(layout.removed / "intake-00003.parquet").to_pylist()
        assert (removed[F.RECORD_ID], removed[F.REMOVED_STAGE], removed[F.REMOVED_REASON]) == (
            "owner/repo:big.ipynb",
            "extract",
            "file_removed",
        )
        assert removed[F.REMOVED_DETAIL] == "ingest:too_large"


def test_license_class_not_kept_removes_the_record(tmp_path):
    layout = PartLayout(tmp_path, SCRIPTS)
    step = NotebookExtractor([layout])
    doc = labeled(NOTEBOOK.read_text(), "a.ipynb", **{F.LICENSE_TYPE: "non_permissive"})
    (rec,) = step.records(doc).values()
    assert (rec.metadata[F.REMOVED_STAGE], rec.metadata[F.REMOVED_REASON]) == (
        "license_filter",
        "non_permissive",
    )
    assert rec.text.startswith("<jupyter_script>")  # the text is kept in removed/, like a file's
