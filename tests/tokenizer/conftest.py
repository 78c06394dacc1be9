"""Real text for the tokenizer tests: every text file of a few installed packages, and a tokenizer
trained on part of it. Nothing is downloaded."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from stackcoder.tokenizer.train_bpe import train_tokenizer

# Python, C, JavaScript, CSS, HTML, JSON, Markdown, type stubs, license texts: installed with the venv
PACKAGES = (
    "tokenizers",
    "markupsafe",
    "wrapt",
    "tqdm",
    "formattedcode",
    "jsonschema_specifications",
    "extractcode_libarchive",
)
SMALL_VOCAB = 2_000


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def read_text_file(path: Path) -> str | None:
    """The file as text, or None for binary (NUL byte or not UTF-8), as The Stack v2 drops them."""
    raw = path.read_bytes()
    if b"\0" in raw:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


@pytest.fixture(scope="session")
def code_files() -> dict[str, str]:
    files: dict[str, str] = {}
    for name in PACKAGES:
        root = _package_dir(name)
        if root is None:
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".so", ".pyc"):
                text = read_text_file(path)
                if text is not None:
                    files[f"{name}/{path.relative_to(root)}"] = text
    suffixes = {Path(p).suffix for p in files}
    if len(files) < 50 or not {".py", ".c", ".js", ".json", ".md"} <= suffixes:
        pytest.skip(f"too few installed package files to test on ({len(files)} files, {sorted(suffixes)})")
    return files


@pytest.fixture(scope="session")
def trained(code_files: dict[str, str]):
    """A small tokenizer trained on the Python files: quick, yet with thousands of real merges."""
    texts = [t for p, t in code_files.items() if p.endswith(".py")]
    return train_tokenizer(texts, vocab_size=SMALL_VOCAB)
