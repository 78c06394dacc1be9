"""The training mix (recipe.md §6, the paper's Table 4): which sources `stackcoder tokenize` reads,
how FIM applies to each, and how often the trainer draws a document from each.

A **source** is a folder of Parquet files with the training text in ``text``: a built dataset's
repository documents (``DIR/documents``) or one of its parts (``DIR/jupyter_scripts``,
``DIR/issues``, ``DIR/text/docs``, ...; docs/sources.md), named by its folder under the dataset.

The mix is given either in **epochs** (relative: a source with 2 is seen twice as often, per token,
as one with 1; the default is 1 for every source, so each is drawn in proportion to its size, the
near-uniform sampling recipe.md §6 infers from the paper) or in **weights** (the probability of
drawing the next document from a source, normalised; every source needs one). Both resolve, once
the sources are tokenized, to each source's probability per document, its expected share of the
training tokens, and its epochs per pass (the epochs each source has been seen when training has
consumed as many tokens as the mix's training split holds). ``tokens.json`` records all of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from stackcoder.data.layout import DOCUMENTS, DatasetLayout
from stackcoder.errors import UserError

# how FIM applies to a source's documents (stackcoder.train.fim): per file of a repository document,
# to a whole document, or not
FIM_MODES = ("repository", "document", "none")
# FIM per source unless --fim says otherwise. Repository documents: file level (recipe.md §2).
# Notebook scripts are plain source files: FIM as a one-file document, as any file of a repository.
# Structured notebooks, issues, pull requests and text: their format's special tokens structure the
# text, and StarCoder2 publishes no FIM for them, so none.
DEFAULT_FIM = {DOCUMENTS: "repository", "jupyter_scripts": "document"}
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*")


@dataclass(frozen=True)
class Source:
    name: str
    path: Path  # a folder of *.parquet with a `text` column
    fim: str  # one of FIM_MODES

    def files(self) -> list[Path]:
        return sorted(self.path.glob("*.parquet"))


def _rows(folder: Path) -> int:
    return sum(pq.ParquetFile(f).metadata.num_rows for f in sorted(folder.glob("*.parquet")))


def dataset_sources(dataset: Path) -> list[tuple[str, Path]]:
    """A built dataset's sources that hold records: its documents, then its parts. A folder of
    Parquet files given as DATASET is one source, ``documents``."""
    layout = DatasetLayout(dataset)
    if not layout.documents.is_dir():
        return [(DOCUMENTS, dataset)] if any(dataset.glob("*.parquet")) else []
    return [(n, layout.part(n)) for n in layout.record_parts() if _rows(layout.part(n))]


def _split(value: str, flag: str) -> tuple[str, str]:
    name, sep, rest = value.partition("=")
    if not sep or not name or not rest:
        raise UserError(f"{flag} {value!r}: write NAME=VALUE")
    return name, rest


def parse_numbers(values: list[str], flag: str) -> dict[str, float]:
    """``NAME=NUMBER`` flags (``--epochs``, ``--weight``) as a dict; a number must be >= 0."""
    out: dict[str, float] = {}
    for v in values:
        name, text = _split(v, flag)
        try:
            out[name] = float(text)
        except ValueError:
            raise UserError(f"{flag} {v!r}: {text!r} is not a number") from None
        if not out[name] >= 0:
            raise UserError(f"{flag} {v!r}: must be 0 or more")
    return out


def parse_fim(values: list[str]) -> dict[str, str]:
    out = dict(_split(v, "--fim") for v in values)
    bad = {n: m for n, m in out.items() if m not in FIM_MODES}
    if bad:
        name, mode = next(iter(bad.items()))
        raise UserError(f"--fim {name}={mode}: the modes are {', '.join(FIM_MODES)}")
    return out


def resolve_sources(dataset: Path, specs: list[str], fim: dict[str, str]) -> list[Source]:
    """The sources to tokenize: every source of ``dataset`` without ``specs``; else exactly the ones
    listed, ``NAME`` (``dataset``'s folder of that name) or ``NAME=PATH`` (a folder of Parquet files
    with ``text``, or a built dataset: its documents)."""
    found = dict(dataset_sources(dataset))
    if not specs:
        chosen = found
        if not chosen:
            raise UserError(
                f"{dataset}: no documents (*.parquet); give a directory built by `stackcoder build`"
            )
    else:
        chosen = {}
        for spec in specs:
            name, sep, path = spec.partition("=")
            if not _NAME.fullmatch(name) or name in chosen:
                why = "named twice" if name in chosen else "names are letters, digits, _ . - and /"
                raise UserError(f"--source {spec!r}: {why}")
            if not sep:
                if name not in found:
                    raise UserError(
                        f"--source {name}: {dataset} has no {name}/ with records (it has: "
                        f"{', '.join(found) or 'none'}); give NAME=PATH for a folder elsewhere"
                    )
                chosen[name] = found[name]
                continue
            folder = DatasetLayout.resolve(path, DOCUMENTS)
            if not any(folder.glob("*.parquet")):
                raise UserError(f"--source {spec}: {folder} holds no *.parquet")
            chosen[name] = folder
    unknown = sorted(set(fim) - set(chosen))
    if unknown:
        raise UserError(f"--fim {unknown[0]}: not a source of this mix ({', '.join(chosen)})")
    # the default by the source's name, else by its folder's (a documents folder named otherwise)
    default = {n: DEFAULT_FIM.get(n, DEFAULT_FIM.get(p.name, "none")) for n, p in chosen.items()}
    return [Source(n, p, fim.get(n, default[n])) for n, p in chosen.items()]


def check_mix(sources: list[Source], epochs: dict[str, float], weights: dict[str, float]) -> str:
    """Which way the mix is given (``epochs`` or ``weights``), after checking the names and values."""
    names = [s.name for s in sources]
    for flag, given in (("--epochs", epochs), ("--weight", weights)):
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise UserError(f"{flag} {unknown[0]}: not a source of this mix ({', '.join(names)})")
    if epochs and weights:
        raise UserError("give the mix in --epochs or in --weight, not both")
    if weights:
        missing = [n for n in names if n not in weights]
        if missing:
            raise UserError(f"--weight: every source needs one; missing {', '.join(missing)}")
    given = weights or {n: epochs.get(n, 1.0) for n in names}
    if not any(given[n] > 0 for n in names):
        raise UserError("the mix gives every source 0: at least one needs more")
    return "weights" if weights else "epochs"


def resolve_mix(sources: list[dict[str, Any]], given: str, values: dict[str, float]) -> list[dict[str, Any]]:
    """Each source (a dict with its ``train`` counts) with ``probability`` (of drawing the next
    document from it), ``token_share`` and ``epochs_per_pass`` added. Epochs E make the probability
    proportional to E × documents, so each source's tokens are seen E times per pass; a source
    with no training documents is never drawn."""
    out = []
    for s in sources:
        v = values.get(s["name"], 1.0 if given == "epochs" else 0.0)
        docs = s["train"]["documents"]
        mass = (v * docs if given == "epochs" else v) if docs else 0.0
        out.append(
            {**s, "epochs": v if given == "epochs" else None, "weight": v if given == "weights" else None}
        )
        out[-1]["mass"] = mass
    total = sum(s["mass"] for s in out)
    for s in out:
        s["probability"] = s.pop("mass") / total if total else 0.0
    # expected tokens per drawn document, per source; their shares of the training tokens
    per_doc = [
        s["probability"] * s["train"]["tokens"] / s["train"]["documents"] if s["train"]["documents"] else 0.0
        for s in out
    ]
    all_tokens = sum(s["train"]["tokens"] for s in out)
    for s, t in zip(out, per_doc, strict=True):
        s["token_share"] = t / sum(per_doc) if sum(per_doc) else 0.0
        tokens = s["train"]["tokens"]
        s["epochs_per_pass"] = s["token_share"] * all_tokens / tokens if tokens else 0.0
    return out


def mix_sources(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The sources a ``tokens.json`` records; one written before mixes existed is one source,
    ``documents``, in ``train/`` and ``valid/`` themselves."""
    if "sources" in info:
        return info["sources"]
    return [
        {
            "name": DOCUMENTS,
            "dir": "",
            "fim": "repository",
            "probability": 1.0,
            "train": info.get("train", {}),
            "valid": info.get("valid", {}),
        }
    ]
