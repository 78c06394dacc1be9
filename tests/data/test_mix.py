"""`stackcoder tokenize` of a dataset with every kind of source (the mix, recipe.md §6): one folder of
shards per source with its counts, special tokens as their ids, the same held-out repositories in
every source, the mix resolved from epochs or weights, the card's mix table, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from stackcoder.cli import main
from stackcoder.data.card import MIX_TITLE, mix_section, update_card_mix
from stackcoder.tokenizer.files import load_tokenizer
from stackcoder.tokenizer.special_tokens import EOS, ISSUE_START, JUPYTER_SCRIPT, JUPYTER_START
from stackcoder.train.dataset import TokenShards

SOURCES = ["documents", "jupyter_scripts", "jupyter_structured", "issues", "text/docs"]


def rows(folder: Path) -> list[dict]:
    return [r for f in sorted(folder.glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def sources(tokens: Path) -> dict[str, dict]:
    return {s["name"]: s for s in json.loads((tokens / "tokens.json").read_text())["sources"]}


def test_every_source_has_its_shards_and_counts(mix_dataset, mix_tokens, mix_tokenizer):
    info = json.loads((mix_tokens / "tokens.json").read_text())
    assert [s["name"] for s in info["sources"]] == SOURCES  # discovered: documents, then the parts
    tok = load_tokenizer(mix_tokenizer)
    for s in info["sources"]:
        records = rows(mix_dataset / s["name"])
        assert s["dir"] == s["name"] and s["train"]["documents"] + s["valid"]["documents"] == len(records)
        # every token of every record, the special-token strings as their ids, nothing added
        encoded = tok.encode_batch_fast([r["text"] for r in records], add_special_tokens=False)
        assert s["train"]["tokens"] + s["valid"]["tokens"] == sum(len(e.ids) for e in encoded)
        shards = TokenShards(mix_tokens / "train" / s["dir"])
        assert (len(shards), shards.num_tokens) == (s["train"]["documents"], s["train"]["tokens"])
    for split in ("train", "valid"):
        assert info[split]["tokens"] == sum(s[split]["tokens"] for s in info["sources"])
    eos = tok.token_to_id(EOS)
    for name, first in (("issues", ISSUE_START), ("jupyter_scripts", JUPYTER_SCRIPT)):
        shards = TokenShards(mix_tokens / "train" / name)
        docs = [shards.document(i) for i in range(len(shards))]
        assert docs and all(d[0] == tok.token_to_id(first) and d[-1] == eos for d in docs)
        assert all(np.count_nonzero(d == eos) == 1 for d in docs)
    # the parts' `number` column: each issue's number, null in the other parts
    assert sorted(r["number"] for r in rows(mix_dataset / "issues")) == [1, 1, 1, 2, 2, 2]
    assert {r["number"] for r in rows(mix_dataset / "jupyter_scripts") + rows(mix_dataset / "text/docs")} == {
        None
    }
    structured = TokenShards(mix_tokens / "train" / "jupyter_structured").document(0)
    assert structured[0] == tok.token_to_id(JUPYTER_START)
    # FIM per source: file level in documents, one-file FIM for scripts, none for the rest
    assert {n: s["fim"] for n, s in sources(mix_tokens).items()} == {
        "documents": "repository",
        "jupyter_scripts": "document",
        "jupyter_structured": "none",
        "issues": "none",
        "text/docs": "none",
    }


def test_the_held_out_repositories_are_the_same_in_every_source(mix_dataset, mix_tokens):
    info = json.loads((mix_tokens / "tokens.json").read_text())
    held_out = {n.lower() for n in info["valid_repositories"]}
    # the fixture's seed holds out a repository with code, notebooks and issues (spelled two ways)
    assert held_out == {"mwouts/jupytext-notebooks", "octo-org/tools"}
    assert {"Mwouts/Jupytext-Notebooks", "mwouts/jupytext-notebooks"} <= set(info["valid_repositories"])
    for name, s in sources(mix_tokens).items():
        records = rows(mix_dataset / name)
        with_repo = [r for r in records if r.get("repo_name")]
        if name == "text/docs":  # no repository: held out by record id
            assert not with_repo and s["valid"]["documents"] >= 1 and s["train"]["documents"] >= 1
            continue
        valid = [r for r in with_repo if r["repo_name"].lower() in held_out]
        assert len(with_repo) == len(records) and s["valid"]["documents"] == len(valid), name
    assert sources(mix_tokens)["issues"]["valid"]["documents"] == 4  # its own and octo-org/tools'


def test_epochs_resolve_to_probabilities(mix_tokens):
    s = sources(mix_tokens)
    docs = {n: x["train"]["documents"] for n, x in s.items()}
    # --epochs issues=3: an issue is drawn 3 times as often as a document of a 1-epoch source
    assert s["issues"]["epochs"] == 3 and s["documents"]["epochs"] == 1 and s["issues"]["weight"] is None
    ratio = s["issues"]["probability"] / s["documents"]["probability"]
    assert ratio == pytest.approx(3 * docs["issues"] / docs["documents"])
    assert sum(x["probability"] for x in s.values()) == pytest.approx(1)
    assert sum(x["token_share"] for x in s.values()) == pytest.approx(1)
    # epochs per pass: 3 times the others', and the mix's tokens in all
    assert s["issues"]["epochs_per_pass"] == pytest.approx(3 * s["documents"]["epochs_per_pass"])
    total = sum(x["train"]["tokens"] for x in s.values())
    seen = sum(x["epochs_per_pass"] * x["train"]["tokens"] for x in s.values())
    assert seen == pytest.approx(total)


def test_the_card_shows_the_mix(mix_dataset, mix_tokens):
    card = (mix_dataset / "README.md").read_text()
    assert card.count(MIX_TITLE) == 1
    section = card.split(MIX_TITLE)[1].split("\n## ")[0]
    table = {
        line.split(" | ")[0].strip("| `"): line.split(" | ")
        for line in section.splitlines()
        if line.startswith("| `")
    }
    assert list(table) == SOURCES
    for name, s in sources(mix_tokens).items():
        cells = table[name]
        assert int(cells[3].replace(",", "")) == s["train"]["tokens"]
        assert int(cells[4].replace(",", "")) == s["valid"]["tokens"]
        assert cells[5] == f"{100 * s['token_share']:.1f}%" and cells[9].strip(" |") == s["fim"]
    assert table["issues"][6] == "3 epochs" and table["documents"][6] == "1 epoch"
    # as the build wrote it, before any tokenization: records and bytes, no tokens yet
    stats = json.loads((mix_dataset / "stats.json").read_text())
    before = "\n".join(mix_section(stats, None))
    assert "`issues` | 6 |" in before and "stackcoder tokenize DIR" in before
    # rewriting the section again leaves one section, the same
    info = json.loads((mix_tokens / "tokens.json").read_text())
    assert update_card_mix(mix_dataset, info)
    assert (mix_dataset / "README.md").read_text() == card


def test_chosen_sources_weights_and_errors(mix_dataset, mix_tokenizer, tmp_path, capsys):
    out = tmp_path / "two"
    base = ["tokenize", str(mix_dataset), "-t", str(mix_tokenizer), "--valid-fraction", "0.25", "-q"]
    args = [*base, "-o", str(out), "--source", "documents", "--source", f"qa={mix_dataset / 'issues'}"]
    assert main([*args, "--weight", "documents=1", "--weight", "qa=1", "--fim", "qa=document"]) == 0
    printed = capsys.readouterr().out
    assert "qa" in printed and "weight 1" in printed
    s = sources(out)
    assert list(s) == ["documents", "qa"] and s["qa"]["fim"] == "document"
    assert s["qa"]["probability"] == s["documents"]["probability"] == 0.5  # weights: per document
    assert any((out / "train" / "qa").glob("*.ds")) and not any((out / "train").glob("*.ds"))

    # one source: the layout of a tokenization without a mix
    one = tmp_path / "one"
    assert main([*base, "-o", str(one), "--source", "documents"]) == 0
    (only,) = json.loads((one / "tokens.json").read_text())["sources"]
    assert only["dir"] == "" and only["probability"] == 1 and any((one / "train").glob("*.ds"))
    capsys.readouterr()

    bad = {
        "not both": ["--epochs", "issues=2", "--weight", "issues=1"],
        "missing documents": ["--source", "documents", "--source", "issues", "--weight", "issues=1"],
        "not a source of this mix": ["--source", "issues", "--epochs", "documents=2"],
        "the modes are": ["--fim", "issues=sometimes"],
        "has no pull_requests/": ["--source", "pull_requests"],  # the build had no pull requests
        "is not a number": ["--epochs", "issues=many"],
        "at least one needs more": ["--source", "issues", "--epochs", "issues=0"],
    }
    for message, flags in bad.items():
        assert main([*base, "-o", str(tmp_path / "bad"), *flags]) == 2, message
        assert message in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()  # refused before anything was written
