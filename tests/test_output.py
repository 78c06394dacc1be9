"""The one output-folder rule (stackcoder/output.py) and the whole-or-nothing writes (atomic.py)."""

from __future__ import annotations

import json

import pytest

from stackcoder.atomic import replace_dir, replacing, temporary_name, write_json, write_text
from stackcoder.errors import UserError
from stackcoder.output import OutputRule, json_record, prepare_output

RULE = OutputRule("build", "build.json", json_record(sort_keys=True), parts=("files", "stats.json"))
FINISHING = OutputRule("tokenization", "logs/settings.json", json_record(indent=1), finished="tokens.json")


def test_same_settings_resume_and_other_settings_are_refused_by_name(tmp_path):
    out = tmp_path / "ds"
    prepare_output(out, {"a": 1, "b": 2}, False, RULE)
    assert (out / "build.json").read_text() == json.dumps({"a": 1, "b": 2}, indent=2, sort_keys=True) + "\n"
    (out / "files").mkdir()
    (out / "files" / "0.parquet").write_text("x")
    prepare_output(out, {"a": 1, "b": 2}, False, RULE)  # resumes: nothing removed
    prepare_output(out, {"a": 1, "b": 2}, True, RULE)  # --overwrite with the same settings resumes too
    assert (out / "files" / "0.parquet").is_file()
    with pytest.raises(UserError, match=r"other settings \(b, c\); pass --overwrite"):
        prepare_output(out, {"a": 1, "b": 3, "c": 0}, False, RULE)
    assert (out / "files" / "0.parquet").is_file()


def test_overwrite_replaces_only_what_the_verb_writes(tmp_path):
    out = tmp_path / "ds"
    prepare_output(out, {"a": 1}, False, RULE)
    (out / "files").mkdir()
    (out / "stats.json").write_text("{}")
    (out / "tokens").mkdir()  # another verb's output inside the dataset
    prepare_output(out, {"a": 2}, True, RULE)
    assert not (out / "files").exists() and not (out / "stats.json").exists()
    assert (out / "tokens").is_dir()
    assert json.loads((out / "build.json").read_text()) == {"a": 2}


def test_someone_elses_folder_and_a_file_are_refused(tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty and holds no stackcoder build"):
        prepare_output(tmp_path / "other", {}, False, RULE)
    (tmp_path / "afile").write_text("")
    with pytest.raises(UserError, match="not a directory"):
        prepare_output(tmp_path / "afile", {}, True, RULE)
    shared = OutputRule("run", "config.json", json_record(), shared=True, queued_logs=None)
    prepare_output(tmp_path / "other", {"x": 1}, False, shared)  # train: other files may share it
    assert (tmp_path / "other" / "notes.txt").is_file()


def test_a_finished_output_is_refused_until_overwrite_replaces_it(tmp_path):
    out = tmp_path / "tokens"
    prepare_output(out, {"seed": 0}, False, FINISHING)
    prepare_output(out, {"seed": 0}, False, FINISHING)  # cut short: resumes
    (out / "tokens.json").write_text("{}")
    with pytest.raises(UserError, match="holds a finished tokenization; pass --overwrite"):
        prepare_output(out, {"seed": 0}, False, FINISHING)
    prepare_output(out, {"seed": 0}, True, FINISHING)
    assert sorted(p.name for p in out.iterdir()) == ["logs"]


def test_writes_are_whole_or_absent(tmp_path):
    target = tmp_path / "sub" / "a.json"
    write_json(target, {"k": [1, 2]})
    assert target.read_text() == '{\n "k": [\n  1,\n  2\n ]\n}\n'
    with pytest.raises(RuntimeError), replacing(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"k": [1, 2]}  # the old file, untouched
    assert not temporary_name(target).exists()
    write_text(target, "new")
    assert target.read_text() == "new"
    built = tmp_path / "built"
    built.mkdir()
    (built / "f").write_text("1")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "old").write_text("0")
    replace_dir(built, tmp_path / "dir")
    assert [p.name for p in (tmp_path / "dir").iterdir()] == ["f"] and not built.exists()
