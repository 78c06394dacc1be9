"""`stackcoder optout add|list`: the round trip a maintainer does when a removal request arrives."""

from __future__ import annotations

import pytest

from stackcoder.cli import main
from stackcoder.data.optout import OptOutFilter, load_optout


def test_add_list_round_trip(tmp_path, capsys):
    path = tmp_path / "lists" / "optout.txt"
    assert main(["optout", "add", "octocat", "Torvalds/Linux", "--file", str(path)]) == 0
    assert "2 added, 2 patterns" in capsys.readouterr().out
    # again, with a duplicate in another case and a glob: appended, de-duplicated, sorted
    assert main(["optout", "add", "OCTOCAT", "acme-*", "--file", str(path)]) == 0
    assert "1 added, 3 patterns" in capsys.readouterr().out
    assert main(["optout", "list", "--file", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == ["acme-*", "octocat", "torvalds/linux"]
    # the file is what `build --opt-out FILE` reads
    assert load_optout(path) == ["acme-*", "octocat", "torvalds/linux"]
    assert OptOutFilter(files=[str(path)]).patterns == ["acme-*", "octocat", "torvalds/linux"]


def test_comments_kept_on_rewrite(tmp_path, capsys):
    path = tmp_path / "optout.txt"
    path.write_text("# requests since 2024\nzed/z  # by mail\n")
    assert main(["optout", "add", "abc", "--file", str(path)]) == 0
    assert path.read_text() == "# requests since 2024\nabc\nzed/z\n"


def test_default_file_from_environment_then_cwd(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STACKCODER_OPTOUT", raising=False)
    assert main(["optout", "add", "octocat"]) == 0
    assert load_optout(tmp_path / "optout.txt") == ["octocat"]
    elsewhere = tmp_path / "shared" / "optout.txt"
    monkeypatch.setenv("STACKCODER_OPTOUT", str(elsewhere))
    assert main(["optout", "add", "zed"]) == 0
    assert load_optout(elsewhere) == ["zed"]
    capsys.readouterr()
    assert main(["optout", "list"]) == 0
    assert capsys.readouterr().out == "zed\n"


@pytest.mark.parametrize("args", [["add", "a/b/c"], ["add", "ok", "bad name"], ["list"]])
def test_errors_are_one_line(tmp_path, capsys, args):
    path = tmp_path / "optout.txt"
    assert main(["optout", *args, "--file", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("stackcoder optout: error: ") and len(err.strip().splitlines()) == 1
    assert not path.exists()  # nothing written when a pattern is bad


def test_bad_line_in_existing_file(tmp_path, capsys):
    path = tmp_path / "optout.txt"
    path.write_text("good\nnot good\n")
    assert main(["optout", "add", "x", "--file", str(path)]) == 2
    assert f"{path}:2:" in capsys.readouterr().err
    assert path.read_text() == "good\nnot good\n"
