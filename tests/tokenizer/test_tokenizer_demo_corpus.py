"""Encode then decode gives back every text of the demo corpus exactly (issue 4's acceptance test).

The corpus is a dataset built by `stackcoder build` from the demo repositories: its ``files/*.parquet``
(``STACKCODER_DEMO_DATASET=DIR``, else ``build/`` in the demo cache: ``$STACKCODER_CACHE`` or
``~/.cache/stackcoder/demo``). Without one, it is every UTF-8 text file of the demo repositories
themselves (the cache's ``repos/``, or ``STACKCODER_DEMO_REPOS``: folders and sdist/npm/zip archives).
"""

import itertools
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from stackcoder.data.corpus import Corpus
from stackcoder.tokenizer.train_bpe import train_tokenizer

# where `stackcoder demo download` puts the corpus (docs/demo-corpus.md), and `build` its dataset
DEMO_CACHE = Path(os.environ.get("STACKCODER_CACHE") or Path.home() / ".cache/stackcoder/demo").expanduser()
DEMO_REPOS = Path(os.environ.get("STACKCODER_DEMO_REPOS") or DEMO_CACHE / "repos")
DEMO_DATASET = os.environ.get("STACKCODER_DEMO_DATASET") or (
    str(DEMO_CACHE / "build") if any((DEMO_CACHE / "build" / "files").glob("*.parquet")) else None
)


def _as_text(raw: bytes) -> str | None:
    if b"\0" in raw or len(raw) > 10_000_000:  # binary or too big: dropped by The Stack v2 (recipe.md §1)
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _archive_blobs(path: Path):
    if tarfile.is_tarfile(path):
        with tarfile.open(path) as tar:
            for member in tar:
                if member.isfile():
                    yield tar.extractfile(member).read()
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    yield zf.read(info)


def _repo_texts(root: Path):
    """Every text file of every demo repository: a directory, or an sdist/npm/zip archive."""
    for repo in sorted(root.iterdir()):
        if repo.is_dir():
            blobs = (
                p.read_bytes()
                for p in sorted(repo.rglob("*"))
                if p.is_file() and ".git" not in p.relative_to(repo).parts
            )
        else:
            blobs = _archive_blobs(repo)
        for raw in blobs:
            text = _as_text(raw)
            if text is not None:
                yield text


def _first_bytes(texts, limit: int):
    for text in texts:
        yield text
        limit -= len(text.encode("utf-8"))
        if limit <= 0:
            return


def demo_texts():
    if DEMO_DATASET:
        files = Path(DEMO_DATASET) / "files"
        if not any(files.glob("*.parquet")):
            pytest.skip(f"STACKCODER_DEMO_DATASET={DEMO_DATASET} has no files/*.parquet")
        return lambda: iter(Corpus([files], column="content"))
    if DEMO_REPOS.is_dir() and any(DEMO_REPOS.iterdir()):
        return lambda: _repo_texts(DEMO_REPOS)
    pytest.skip(
        f"no demo corpus: run `stackcoder demo download` (fills {DEMO_REPOS}) or set STACKCODER_DEMO_DATASET"
    )


@pytest.mark.slow
def test_round_trip_is_exact_on_the_whole_demo_corpus():
    texts = demo_texts()
    # a realistic tokenizer (thousands of merges) from a sample, then every text through it
    tok = train_tokenizer(_first_bytes(texts(), 3_000_000), vocab_size=8_192)
    n_texts = n_bytes = 0
    failures = []
    it = texts()
    while batch := list(itertools.islice(it, 256)):
        encodings = tok.encode_batch(batch, add_special_tokens=False)
        decoded = tok.decode_batch([e.ids for e in encodings], skip_special_tokens=False)
        failures += [t[:80] for t, d in zip(batch, decoded, strict=True) if d != t]
        n_texts += len(batch)
        n_bytes += sum(len(t.encode("utf-8")) for t in batch)
    assert n_texts > 0
    assert failures == [], f"{len(failures)} of {n_texts} texts ({n_bytes:,} bytes) did not round-trip"
