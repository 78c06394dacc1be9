"""Names -> ``<NAME>`` with a token-classification model (recipe.md §1 stage 6), off by default.

The Stack v2 used StarPII, a fine-tuned NER model (labels B-/I- NAME, EMAIL, KEY, PASSWORD,
IP_ADDRESS, USERNAME, ...); "names only when they are full names" (BigCode's ``is_full_name``: two
words or more). Any Hugging Face token-classification model with such labels works: it is loaded
from a local directory only, never downloaded, once per worker process on the first file. Only
NAME entities are used: the other kinds come from the rules of the sibling modules. Long files are
read in overlapping windows of the model's maximum length (the pipeline's ``stride``).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

from stackcoder.data.pii.spans import NAME, PLACEHOLDERS, Span
from stackcoder.errors import UserError

_WEIGHTS = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
_TOKENIZER = ("tokenizer.json", "vocab.txt", "vocab.json", "spm.model", "sentencepiece.bpe.model")
# tokens shared by consecutive windows (at most a quarter of one): a name cut by an edge is seen whole
STRIDE = 64


def check_name_model(path: str) -> Path:
    """The model directory, or a UserError that says what is missing (raised when the step is built)."""
    where = Path(path).expanduser().resolve()
    hint = "[pii] name_model must be a local directory holding a token-classification model"
    if not where.is_dir():
        raise UserError(f"{hint}; {where} does not exist (models are never downloaded)")
    missing = [
        what
        for what, names in (
            ("config.json", ("config.json",)),
            ("weights", _WEIGHTS),
            ("tokenizer", _TOKENIZER),
        )
        if not any((where / n).is_file() for n in names)
    ]
    if missing:
        raise UserError(f"{hint}; {where} has no {', '.join(missing)}")
    for package in ("torch", "transformers"):
        if importlib.util.find_spec(package) is None:
            raise UserError(f"[pii] name_model needs {package}: pip install 'stackcoder[model]'")
    return where


@functools.cache
def _pipeline(path: str) -> Any:
    from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForTokenClassification.from_pretrained(path, local_files_only=True)
    return pipeline("token-classification", model=model, tokenizer=tokenizer, aggregation_strategy="simple")


def find_names(text: str, model_dir: str) -> list[Span]:
    if not text.strip():
        return []
    pipe = _pipeline(model_dir)
    entities = pipe(text, stride=min(STRIDE, pipe.tokenizer.model_max_length // 4))
    return [
        Span(e["start"], e["end"], NAME, PLACEHOLDERS[NAME])
        for e in entities
        if e["entity_group"] == NAME.upper() and len(text[e["start"] : e["end"]].split()) > 1
    ]
