"""`stackcoder build` as a user meets it: help, bad input as one-line errors, the printed summary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from stackcoder.cli import main

REPOS = Path(__file__).parents[1] / "fixtures" / "repos"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stackcoder", *args], capture_output=True, text=True, timeout=600
    )


def test_help_lists_the_options():
    out = run_cli("build", "--help")
    assert out.returncode == 0
    for flag in ("--output", "--repos-dir", "--repo-metadata", "--recipe", "--workers", "--executor"):
        assert flag in out.stdout


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda t: [str(t / "missing"), "-o", str(t / "o")], "no such file or directory"),
        (lambda t: [str(t / "plain"), "--source-type", "git", "-o", str(t / "o")], "not a git repository"),
        (lambda t: [str(t / "bad.tar.gz"), "-o", str(t / "o")], "bad.tar.gz"),
        (lambda t: [str(REPOS / "jsonify-0.0.0.tgz"), "-w", "0", "-o", str(t / "o")], "--workers"),
        (lambda t: [str(REPOS / "jsonify-0.0.0.tgz"), "-o", str(t / "afile")], "not a directory"),
        (
            lambda t: [str(REPOS / "jsonify-0.0.0.tgz"), "--recipe", str(t / "r.toml"), "-o", str(t / "o")],
            "recipe file not found",
        ),
        (
            lambda t: [str(REPOS / "jsonify-0.0.0.tgz"), "--text", f"docs={t / 'afile'}", "-o", str(t / "o")],
            "expected .jsonl",
        ),
    ],
)
def test_bad_input_is_one_line_error(tmp_path, make_args, message):
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "a.py").write_text("x = 1\n")
    (tmp_path / "bad.tar.gz").write_bytes(b"\x1f\x8b\x08\x00 this is not gzip data")
    (tmp_path / "afile").write_text("")
    out = run_cli("build", *make_args(tmp_path))
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stackcoder build: error:"), out.stderr
    assert message in lines[0]
    assert "Traceback" not in out.stderr


def test_build_prints_summary_and_paths(tmp_path, capsys):
    pytest.importorskip("licensedcode", reason="scancode-toolkit is not installed")
    out_dir = tmp_path / "out"
    assert main(["build", str(REPOS / "jsonify-0.0.0.tgz"), "-o", str(out_dir), "-w", "1"]) == 0
    out = capsys.readouterr().out
    assert "stage" in out and "text_names" in out and "kept 7 of 7 files" in out
    assert f"files:     {out_dir / 'files'}" in out and (out_dir / "stats.json").is_file()
    assert f"documents: {out_dir / 'documents'}" in out and (out_dir / "README.md").is_file()


@pytest.mark.parametrize(
    "override, message",
    [
        ("[dedup.near]\nbands = 10\n", "bands x rows must equal num_perm"),
        ("[dedup.near]\nthreshold = 1.5\n", "threshold must be in (0, 1]"),
        ("[documents]\nmetadata_probability = 2.0\n", "metadata_probability must be within [0, 1]"),
        ("[documents]\nmax_document_bytes = 0\n", "max_document_bytes must be positive"),
    ],
)
def test_out_of_range_recipe_values_are_refused_before_anything_is_written(tmp_path, override, message):
    recipe = tmp_path / "r.toml"
    recipe.write_text(override)
    out = run_cli(
        "build", str(REPOS / "jsonify-0.0.0.tgz"), "--recipe", str(recipe), "-o", str(tmp_path / "o")
    )
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stackcoder build: error: recipe file"), out.stderr
    assert message in lines[0]
    assert not (tmp_path / "o").exists()  # no build.json left behind
