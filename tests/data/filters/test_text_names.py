from __future__ import annotations

import pytest

from helpers import make_file
from stackcoder.data import fields as F
from stackcoder.data.filters import TextNameFilter


def reason(path, language="Text", **kwargs):
    (out,) = TextNameFilter(**kwargs).run(iter([make_file("some text\n", path, language=language)]))
    if F.REMOVED_STAGE in out.metadata:
        assert out.metadata[F.REMOVED_STAGE] == "text_names"
    return out.metadata.get(F.REMOVED_REASON)


@pytest.mark.parametrize(
    "path",
    [
        "requirements.txt",
        "docs/Requirements-Dev.txt",
        "test_requirements_old.txt",
        "README.txt",
        "sub/readme.TXT",
        "NOTES.txt",
        "todo.txt",
        "pkg/DESCRIPTION.txt",
        "CMakeLists.txt",
    ],
)
def test_kept_names(path):
    assert reason(path) is None


@pytest.mark.parametrize(
    "path",
    ["LICENSE.txt", "data/words.txt", "readme.old.txt", "my_readme.txt", "requirements/dev.txt", "todos.txt"],
)
def test_other_text_files_dropped(path):
    assert reason(path) == "text_filename"


def test_only_text_files():
    assert reason("words.py", language="Python") is None
    assert reason("words.md", language="Markdown") is None


def test_configurable():
    assert reason("words.txt", stems=["words"]) is None
    assert reason("README.txt", stems=[]) == "text_filename"
