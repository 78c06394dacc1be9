"""Plain helpers the tests import (``from helpers import make_file``; ``tests/`` is on the path, see
pyproject.toml). Fixtures are in ``conftest.py``."""

from __future__ import annotations

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


# Text that is certainly not in any training set, for the membership tests: seeded, either random
# printable characters or code-like tokens (keywords and operators code shares, random identifiers).
_CODE_WORDS = (
    "def return self if else for in import from class None x i ( ) : = , . [ ] + 0 1 value data".split()
)


def random_text(n: int, seed: int, kind: str = "chars") -> str:
    import random
    import string

    rng = random.Random(seed)
    if kind == "chars":
        alphabet = string.ascii_letters + string.digits + string.punctuation + " " * 12 + "\n" * 3
        return "".join(rng.choices(alphabet, k=n))
    out, size = [], 0
    while size < n:
        word = (
            rng.choice(_CODE_WORDS)
            if rng.random() < 0.7
            else "".join(rng.choices(string.ascii_lowercase, k=6))
        )
        word += rng.choice([" ", " ", "", "\n    "])
        out.append(word)
        size += len(word)
    return "".join(out)[:n]
