"""Shared fixtures (plain helpers such as ``make_file`` are in ``tests/helpers.py``). Nothing here
touches the network, except ``demo_corpus``, which downloads the pinned demo packages when the cache
is empty (and skips the test when the registries cannot be reached)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest


@pytest.fixture(scope="session")
def demo_corpus():
    """The demo corpus in the default cache, downloaded (pinned checksums) when missing; the test is
    skipped with the reason when the package registries cannot be reached."""
    from stackcoder.data.demo.download import download_corpus
    from stackcoder.data.demo.manifest import default_cache
    from stackcoder.errors import UserError

    try:
        return download_corpus(default_cache(), progress=False)
    except UserError as e:
        pytest.skip(f"demo corpus unavailable: {e}")


# A small real training set (the training and tokenize tests): the fixture repositories built by
# `stackcoder build` (documents split at ~6 kB so there are enough to pack), a tokenizer trained on
# them, and their token shards. Built once per session; nothing is downloaded.
FIXTURE_REPOS = Path(__file__).parent / "fixtures" / "repos"


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    pytest.importorskip("licensedcode", reason="scancode-toolkit is not installed")
    from stackcoder.data.build import BuildConfig, build
    from stackcoder.data.executor import RunOptions

    root = tmp_path_factory.mktemp("train-data")
    recipe = root / "recipe.toml"
    recipe.write_text("[documents]\nmax_document_bytes = 6000\n")
    sources = sorted(str(p) for p in FIXTURE_REPOS.iterdir() if p.name != "README.md")
    build(
        BuildConfig(
            sources=sources, output=root / "ds", recipe=str(recipe), run=RunOptions(workers=1, progress=False)
        )
    )
    return root / "ds"


@pytest.fixture(scope="session")
def tokenizer_dir(dataset: Path) -> Path:
    from stackcoder.tokenizer.files import save_tokenizer
    from stackcoder.tokenizer.train_bpe import train_tokenizer

    texts = [
        t
        for f in sorted((dataset / "documents").glob("*.parquet"))
        for t in pq.read_table(f)["text"].to_pylist()
    ]
    return save_tokenizer(train_tokenizer(texts, vocab_size=600), dataset.parent / "tok")


@pytest.fixture(scope="session")
def tokens(dataset: Path, tokenizer_dir: Path) -> Path:
    from stackcoder.data.executor import RunOptions
    from stackcoder.data.options import TokenizeConfig
    from stackcoder.data.tokenize import tokenize

    out = dataset / "tokens"  # where `stackcoder tokenize` puts them by default
    tokenize(
        TokenizeConfig(
            str(dataset),
            str(tokenizer_dir),
            output=str(out),
            valid_fraction=0.2,
            run=RunOptions(progress=False),
        )
    )
    return out


# A dataset with every kind of source (the mix tests): the fixture repositories' documents, two git
# repositories of real notebooks (jupyter_scripts, jupyter_structured; one's remote in mixed case),
# pages of this project's docs (text/docs) and GitHub issues on those repositories (GHArchive-shaped
# events, bodies from docs/), built by `stackcoder build`, with its own tokenizer.
NOTEBOOK_REPOS = {"jupytext": "Mwouts/Jupytext-Notebooks", "nbformat": "jupyter/nbformat-tests"}


@pytest.fixture(scope="session")
def mix_dataset(tmp_path_factory) -> Path:
    pytest.importorskip("licensedcode", reason="scancode-toolkit is not installed")
    pytest.importorskip("jupytext", reason="jupytext is not installed")
    import json
    import shutil

    from data.gharchive.helpers import Stream, Thread, git, write_dump
    from stackcoder.data.build import BuildConfig, build
    from stackcoder.data.executor import RunOptions

    root = tmp_path_factory.mktemp("mix-data")
    docs = Path(__file__).parents[1] / "docs"
    sources = sorted(str(p) for p in FIXTURE_REPOS.iterdir() if p.name != "README.md")
    for name, remote in NOTEBOOK_REPOS.items():
        path = root / "repos" / name
        shutil.copytree(FIXTURE_REPOS.parent / "notebooks" / name, path)
        git(path, "init", "-q", "-b", "main")
        git(path, "remote", "add", "origin", f"https://github.com/{remote}.git")
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", "notebooks")
        sources.append(str(path))
    pages = ["pii.md", "optout.md", "malware.md", "license.md", "dedup.md", "decontamination.md"]
    (root / "docs.jsonl").write_text(
        "".join(json.dumps({"text": (docs / p).read_text()}) + "\n" for p in pages)
    )
    # issues: two per repository (one spelled in lower case), bodies and replies from real prose
    prose = [(docs / name).read_text() for name in ("glossary.md", "documents.md", "training.md")]
    paragraphs = [p for text in prose for p in text.split("\n\n") if len(p) > 250 and "|" not in p]
    stream = Stream()
    repos = [r.lower() for r in NOTEBOOK_REPOS.values()] + ["octo-org/tools"]
    for k, (repo, number) in enumerate((r, n) for r in repos for n in (1, 2)):
        t = Thread(repo, number, f"author-{k}", paragraphs[2 * k][:60].strip(), paragraphs[2 * k])
        stream.issue_event(t, "opened")
        stream.comment(t, f"helper-{k}", paragraphs[2 * k + 1], 5000 + k)
    (root / "gharchive").mkdir()
    write_dump(root / "gharchive" / "2023-03-01-9.json.gz", stream.events)
    recipe = root / "recipe.toml"
    recipe.write_text("[documents]\nmax_document_bytes = 6000\n")
    out = root / "ds"
    config = BuildConfig(
        sources=sources,
        output=out,
        recipe=str(recipe),
        texts=[f"docs={root / 'docs.jsonl'}"],
        events=[str(root / "gharchive")],
        run=RunOptions(workers=1, progress=False),
    )
    build(config)
    return out


@pytest.fixture(scope="session")
def mix_tokenizer(mix_dataset: Path) -> Path:
    from stackcoder.tokenizer.files import save_tokenizer
    from stackcoder.tokenizer.train_bpe import train_tokenizer

    texts = [
        t
        for part in ("documents", "jupyter_scripts", "issues")
        for f in sorted((mix_dataset / part).glob("*.parquet"))
        for t in pq.read_table(f)["text"].to_pylist()
    ]
    return save_tokenizer(train_tokenizer(texts, vocab_size=600), mix_dataset.parent / "tok")


MIX_SEED = 3  # holds out Mwouts/Jupytext-Notebooks and octo-org/tools (tests/data/test_mix.py checks)


@pytest.fixture(scope="session")
def mix_tokens(mix_dataset: Path, mix_tokenizer: Path) -> Path:
    """`stackcoder tokenize` of every source of ``mix_dataset``, issues at 3 epochs, into DIR/tokens."""
    from stackcoder.data.executor import RunOptions
    from stackcoder.data.options import TokenizeConfig
    from stackcoder.data.tokenize import tokenize

    config = TokenizeConfig(
        str(mix_dataset),
        str(mix_tokenizer),
        valid_fraction=0.25,
        seed=MIX_SEED,
        epochs={"issues": 3.0},
        run=RunOptions(progress=False),
    )
    tokenize(config)
    return mix_dataset / "tokens"


@pytest.fixture(scope="session")
def index_dir(dataset: Path) -> Path:
    """`stackcoder index build` of `dataset`, in two shards (queries must look in both)."""
    from stackcoder.data.executor import RunOptions
    from stackcoder.index.build import build_index
    from stackcoder.index.config import IndexConfig

    out = dataset.parent / "index"
    build_index(IndexConfig(str(dataset), str(out), shards=2, run=RunOptions(progress=False)))
    return out


# A small random StarCoder2 checkpoint (the debug size; the fixture tokenizer with StarCoder2's special
# tokens) for the server and evaluation tests.
@pytest.fixture(scope="session")
def serve_checkpoint(tmp_path_factory) -> Path:
    import torch

    from stackcoder.model import Starcoder2, get_size
    from stackcoder.model.hf import save_model

    torch.manual_seed(0)
    model = Starcoder2(get_size("debug", vocab_size=400, max_position_embeddings=512))
    with torch.no_grad():  # spread-out logits, so the output depends on the prompt
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0, 1.0 if "embed" in name else 1.5 / p.shape[-1] ** 0.5)
    path = tmp_path_factory.mktemp("serve-ckpt")
    save_model(model, path, tokenizer_dir=Path(__file__).parent / "fixtures" / "model")
    return path


@pytest.fixture(scope="session")
def live_server(serve_checkpoint):
    """`stackcoder serve`'s app on `serve_checkpoint`, on a free port of 127.0.0.1: (url, app)."""
    import socket
    import threading
    import time

    uvicorn = pytest.importorskip("uvicorn")
    httpx = pytest.importorskip("httpx")
    from stackcoder.serve.app import create_app
    from stackcoder.serve.config import ServeConfig

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(ServeConfig(model=str(serve_checkpoint), port=port))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    yield url, app
    server.should_exit = True
    thread.join(timeout=10)
