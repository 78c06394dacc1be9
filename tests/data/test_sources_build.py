"""`stackcoder build` with notebooks and --text (recipe.md §6): each part's funnel, per stage and
reason, on real notebooks (tests/fixtures/notebooks) and real documentation (this project's docs/)."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from stackcoder.data import fields as F
from stackcoder.data.build import BuildConfig, build
from stackcoder.data.executor import RunOptions

pytest.importorskip("licensedcode", reason="scancode-toolkit is not installed")
pytest.importorskip("jupytext", reason="jupytext is not installed")

ROOT = Path(__file__).parents[2]
NOTEBOOKS = ROOT / "tests" / "fixtures" / "notebooks"
EOS = "<|endoftext|>"


def read(folder: Path) -> list[dict]:
    return [r for p in sorted(folder.glob("*.parquet")) for r in pq.read_table(p).to_pylist()]


def make_inputs(tmp: Path) -> dict:
    """Five repositories of real notebooks, a docs and a Q&A text file, opt-out and host licenses."""
    repos = tmp / "repos"
    shutil.copytree(NOTEBOOKS / "jupytext", repos / "jupytext-notebooks")  # MIT
    shutil.copytree(NOTEBOOKS / "nbformat", repos / "nbformat-tests")  # BSD-3-Clause
    v3 = (NOTEBOOKS / "nbformat" / "test3_no_metadata.ipynb").read_text()
    (repos / "nbformat-tests" / "broken.ipynb").write_text(v3[: len(v3) // 2])  # truncated JSON
    (repos / "gpl-notebooks").mkdir()  # its host license (repo metadata) is GPL: non_permissive
    shutil.copy(NOTEBOOKS / "jupytext" / "jupyter.ipynb", repos / "gpl-notebooks")
    (repos / "fork").mkdir()  # no license: an exact and a near copy of jupytext-notebooks' notebooks
    shutil.copy(NOTEBOOKS / "jupytext" / "jupyter.ipynb", repos / "fork")
    outputs = (NOTEBOOKS / "jupytext" / "text_outputs_and_images.ipynb").read_text()
    (repos / "fork" / "outputs.ipynb").write_text(outputs.replace("# Second plot", "# Another plot"))
    (repos / "optedout").mkdir()
    shutil.copy(NOTEBOOKS / "jupytext" / "ir_notebook.ipynb", repos / "optedout")
    meta = tmp / "repo_metadata.jsonl"
    meta.write_text(json.dumps({"repo_name": "gpl-notebooks", "license": "GPL-3.0-only"}) + "\n")
    optout = tmp / "optout.txt"
    optout.write_text("optedout\n")

    pages = [(ROOT / "docs" / name).read_text() for name in ("pii.md", "optout.md", "malware.md")]
    near = pages[0].replace("redaction", "masking", 3)  # the same page, lightly edited
    docs = [{"text": t, "site": "stackcoder"} for t in pages] + [{"text": near, "site": "mirror"}]
    lines = [json.dumps(d) for d in docs] + ['{"text": "cut', json.dumps({"title": "no text"})]
    (tmp / "docs.jsonl").write_text("\n".join(lines) + "\n")
    with tarfile.open(ROOT / "tests" / "fixtures" / "repos" / "MarkupSafe-2.1.5.tar.gz") as tar:
        pkg_info = tar.extractfile("MarkupSafe-2.1.5/PKG-INFO").read().decode()  # has an email
    qa = [
        {"id": "q1", "text": pkg_info, "score": 3},
        {"id": "q2", "text": pages[2], "repo_name": "optedout/anything"},
    ]
    (tmp / "qa.jsonl").write_text("\n".join(json.dumps(r) for r in qa) + "\n")
    return {
        "sources": [str(p) for p in sorted(repos.iterdir())],
        "repo_metadata": str(meta),
        "opt_out_files": [str(optout)],
        "texts": [f"docs={tmp / 'docs.jsonl'}", str(tmp / "qa.jsonl")],
    }


def run_build(tmp: Path, out: str, **run) -> tuple[Path, dict]:
    inputs = (
        make_inputs(tmp) if not (tmp / "repos").exists() else json.loads((tmp / "inputs.json").read_text())
    )
    (tmp / "inputs.json").write_text(json.dumps(inputs))
    result = build(BuildConfig(output=tmp / out, run=RunOptions(progress=False, **run), **inputs))
    return result.output, result.stats


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return run_build(tmp_path_factory.mktemp("sources"), "out", workers=1)


def funnel(stats: dict, part: str) -> dict[str, dict[str, int]]:
    """stage -> {reason: records removed} of a part, for the stages that removed any."""
    stages = stats["parts"][part]["stages"]
    return {s["stage"]: {k: v["files"] for k, v in s["removed"].items()} for s in stages if s["removed"]}


def test_parts_and_their_stages(built):
    _, stats = built
    assert list(stats["parts"]) == ["jupyter_scripts", "jupyter_structured", "text/docs", "text/qa"]
    stages = [s["stage"] for s in stats["parts"]["jupyter_scripts"]["stages"]]
    assert stages == [
        "extract",
        "license_filter",
        "exact_dedup",
        "near_dedup",
        "pii",
        "decontamination",
        "malware",
    ]
    assert [s["stage"] for s in stats["parts"]["text/qa"]["stages"]][:2] == ["read", "opt_out"]


def test_notebook_funnels_per_stage_and_reason(built):
    _, stats = built
    # 8 notebooks not opted out: jupytext 3, nbformat 2 (one truncated), gpl 1, fork 2
    assert funnel(stats, "jupyter_scripts") == {
        "extract": {"invalid_json": 1},
        "license_filter": {"non_permissive": 1},
        "near_dedup": {"near_duplicate": 2},  # fork's exact copy and its edited copy
    }
    assert funnel(stats, "jupyter_structured") == {
        "extract": {"invalid_json": 1, "not_python": 1},  # the R notebook has no structured form
        "license_filter": {"non_permissive": 1},
        "near_dedup": {"near_duplicate": 2},
    }
    for part in ("jupyter_scripts", "jupyter_structured", "text/docs", "text/qa"):
        t = stats["parts"][part]["totals"]
        assert t["files_seen"] == t["files_kept"] + t["files_removed"]
    assert stats["parts"]["jupyter_scripts"]["totals"]["files_seen"] == 8


def test_notebook_records(built):
    out, _ = built
    scripts = {r[F.RECORD_ID]: r for r in read(out / "jupyter_scripts")}
    assert set(scripts) == {
        "jupytext-notebooks:jupyter.ipynb",
        "jupytext-notebooks:ir_notebook.ipynb",
        "jupytext-notebooks:text_outputs_and_images.ipynb",
        "nbformat-tests:test3_no_metadata.ipynb",
    }
    r = scripts["jupytext-notebooks:ir_notebook.ipynb"]
    assert r[F.TEXT].startswith("<jupyter_script># This is a jupyter notebook that uses the IR kernel.")
    assert (r[F.LANGUAGE], r[F.LICENSE_TYPE], r[F.DETECTED_LICENSES]) == ("R", "permissive", ["MIT"])
    assert (r[F.REPO_NAME], r[F.PATH]) == ("jupytext-notebooks", "ir_notebook.ipynb")
    meta = json.loads(scripts["nbformat-tests:test3_no_metadata.ipynb"][F.RECORD_METADATA])
    assert (meta["nbformat"], meta["language_source"]) == ("3.0", "nbformat3_cells")
    assert scripts["nbformat-tests:test3_no_metadata.ipynb"][F.DETECTED_LICENSES] == ["BSD-3-Clause"]
    structured = {r[F.RECORD_ID]: r for r in read(out / "jupyter_structured")}
    assert all(r[F.TEXT].startswith("<jupyter_start><jupyter_text>") for r in structured.values())
    assert all(r[F.TEXT].endswith(EOS) and r[F.LANGUAGE] == "Python" for r in structured.values())

    removed = {(r[F.RECORD_ID], r[F.REMOVED_REASON]): r for r in read(out / "removed" / "jupyter_scripts")}
    assert removed["nbformat-tests:broken.ipynb", "invalid_json"][F.REMOVED_STAGE] == "extract"
    assert removed["gpl-notebooks:jupyter.ipynb", "non_permissive"][F.LICENSE_TYPE] == "non_permissive"
    near = removed["fork:outputs.ipynb", "near_duplicate"]
    assert near[F.REMOVED_DETAIL] == "jupytext-notebooks/text_outputs_and_images.ipynb"
    assert (
        removed["fork:jupyter.ipynb", "near_duplicate"][F.REMOVED_DETAIL]
        == "jupytext-notebooks/jupyter.ipynb"
    )


def test_notebook_files_stay_files(built):
    out, _ = built
    files = {(r[F.REPO_NAME], r[F.PATH]): r for r in read(out / "files") + read(out / "removed")}
    assert files["jupytext-notebooks", "jupyter.ipynb"][F.LANGUAGE] == "Jupyter Notebook"
    assert ("jupytext-notebooks", "ir_notebook.ipynb") in files


def test_opted_out_repository_is_in_no_part(built):
    out, stats = built
    for folder in ["jupyter_scripts", "jupyter_structured", "text/docs", "text/qa"]:
        for rows in (read(out / folder), read(out / "removed" / folder)):
            assert not [r for r in rows if "optedout" in json.dumps(r)], folder
    assert funnel(stats, "text/qa") == {"opt_out": {"opted_out": 1}}  # from the step's counters
    assert stats["parts"]["text/qa"]["totals"]["files_opted_out"] == 1


def test_text_extras(built):
    out, stats = built
    assert funnel(stats, "text/docs") == {
        "read": {"invalid_json": 1, "no_text": 1},
        "near_dedup": {"near_duplicate": 1},  # the edited copy; docs' near dedup (recipe [text.kinds.docs])
    }
    docs = read(out / "text" / "docs")
    assert len(docs) == 3 and all(r[F.TEXT].endswith(EOS) for r in docs)
    assert {json.loads(r[F.RECORD_METADATA])["site"] for r in docs} == {"stackcoder"}
    (qa,) = read(out / "text" / "qa")  # kind "qa" from the file name: [text.default], PII on
    assert (qa[F.RECORD_ID], json.loads(qa[F.RECORD_METADATA])) == ("q1", {"score": 3})
    assert "<EMAIL>" in qa[F.TEXT] and "@palletsprojects.com" not in qa[F.TEXT]
    assert stats["parts"]["text/qa"]["pii"]["email"] >= 1
    # docs: no PII step (recipe [text.kinds.docs] pii = false), so nothing counted there
    assert stats["parts"]["text/docs"]["pii"] == {}


def test_card_and_layout(built):
    out, _ = built
    card = (out / "README.md").read_text()
    assert "## Other sources" in card and "| `jupyter_scripts` | 8 | 4 |" in card
    assert "- config_name: text_docs" in card and "path: text/docs/*.parquet" in card
    assert sorted(p.name for p in (out / "removed").iterdir() if p.is_dir()) == [
        "jupyter_scripts",
        "jupyter_structured",
        "text",
    ]


@pytest.mark.slow
def test_ray_gives_the_same_parts(tmp_path):
    """The notebook parts do not depend on the executor (a small case: Ray starts up per pass)."""
    pytest.importorskip("ray", reason="Ray is not installed")
    import ray

    inputs = make_inputs(tmp_path)
    recipe = tmp_path / "recipe.toml"  # fewer passes: no file dedup, scripts only
    recipe.write_text(
        "[dedup.exact]\nenabled = false\n[dedup.near]\nenabled = false\n[jupyter]\nstructured = false\n"
    )
    sources = [s for s in inputs["sources"] if Path(s).name in ("jupytext-notebooks", "fork")]
    inputs = {**inputs, "sources": sources, "texts": [], "recipe": str(recipe)}

    def run(name: str, **kwargs) -> dict:
        return build(
            BuildConfig(output=tmp_path / name, run=RunOptions(progress=False, **kwargs), **inputs)
        ).stats

    local = run("local", workers=1)
    try:
        on_ray = run("ray", workers=2, executor="ray")
    finally:
        ray.shutdown()
    for folder in (Path("jupyter_scripts"), Path("removed") / "jupyter_scripts"):
        assert read(tmp_path / "ray" / folder) == read(tmp_path / "local" / folder) != [], folder
    strip = [
        {k: v for k, v in s.items() if k != "time_s"} for s in local["parts"]["jupyter_scripts"]["stages"]
    ]
    assert [
        {k: v for k, v in s.items() if k != "time_s"} for s in on_ray["parts"]["jupyter_scripts"]["stages"]
    ] == strip
