"""Fixtures of the reader tests; the helpers they use are in builders.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from data.readers.builders import Git


@pytest.fixture
def git(tmp_path: Path) -> Git:
    """A git command with a fixed identity and dates, and no user or system config."""
    if shutil.which("git") is None:
        pytest.skip("the git command is not installed")
    home = tmp_path / "home"
    home.mkdir()
    return Git(home)
