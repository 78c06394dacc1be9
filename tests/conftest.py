"""Shared test helpers. Nothing here touches the network."""

from __future__ import annotations

from datatrove.data import Document

from stackcoder.data import fields as F


def make_file(content: str | bytes, path: str = "src/main.py", repo_name: str = "owner/repo", **meta) -> Document:
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
