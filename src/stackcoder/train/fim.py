"""File-level fill-in-the-middle inside repository documents, as StarCoder2 was trained (recipe.md §2).

A document is ``[<repo_name>owner/name]<file_sep>path\\ncode<file_sep>…<|endoftext|>``. With
probability ``rate`` it is a FIM candidate; in a candidate each file chunk (what follows a
``<file_sep>``, up to the next ``<file_sep>`` or ``<|endoftext|>``) is transformed with probability
``file_rate``; the ``<repo_name>`` part never is. Two split points are drawn uniformly over the
chunk's characters (after its path line when the document has metadata: the path stays at the head
of the prefix, as the recipe's ``{path\\n prefix}`` says), and each part is tokenized on its own:

    PSM  <fim_prefix>{path\\n prefix}<fim_suffix>{suffix}<fim_middle>{middle}
    SPM  <fim_prefix><fim_suffix>{suffix}<fim_middle>{path\\n prefix}{middle}

The draws follow bigcode's Megatron-LM (``permute``): candidate, then per chunk transform, SPM and
the two boundaries (``randint(0, len + 1, 2)``, sorted). A transformed document is a few tokens
longer than before; the loader packs after this transform, so training sequences keep their length
and nothing of the file is cut (docs/training.md).

That is ``mode="repository"``. The other sources of a mix (recipe.md §6) have no published FIM;
``mode="document"`` treats a document as a repository of one file with no path: its leading special
tokens (``<jupyter_script>``) stay in front, its closing ``<|endoftext|>`` at the end, and the text
between is the one chunk, drawn as above (``stackcoder tokenize --fim`` says which source gets which).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

from stackcoder.errors import UserError
from stackcoder.tokenizer.files import decode, encode_batch
from stackcoder.tokenizer.special_tokens import (
    EOS,
    FILE_SEP,
    FIM_MIDDLE,
    FIM_PREFIX,
    FIM_SUFFIX,
    REPO_NAME,
    SPECIAL_TOKENS,
)


@dataclass(frozen=True)
class FimIds:
    prefix: int
    middle: int
    suffix: int
    file_sep: int
    eos: int
    repo_name: int

    @classmethod
    def of(cls, tok: Tokenizer) -> FimIds:
        names = {"prefix": FIM_PREFIX, "middle": FIM_MIDDLE, "suffix": FIM_SUFFIX}
        names |= {"file_sep": FILE_SEP, "eos": EOS, "repo_name": REPO_NAME}
        ids = {k: tok.token_to_id(v) for k, v in names.items()}
        missing = [names[k] for k, v in ids.items() if v is None]
        if missing:
            raise UserError(
                f"the tokenizer has no {', '.join(missing)} token: FIM needs StarCoder2's special tokens"
            )
        return cls(**ids)


class Fim:
    """The transform: ``fim(tokens, rng)`` returns the document's tokens, transformed or as they were."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        rate: float = 0.5,
        file_rate: float = 0.5,
        spm_rate: float = 0.5,
        mode: str = "repository",
    ):
        for name, p in (("rate", rate), ("file_rate", file_rate), ("spm_rate", spm_rate)):
            if not 0 <= p <= 1:
                raise UserError(f"FIM {name} must be in [0, 1], not {p}")
        if mode not in ("repository", "document"):
            raise UserError(f"FIM mode must be repository or document, not {mode!r}")
        self.tok = tokenizer
        self.ids = FimIds.of(tokenizer)
        self.rate, self.file_rate, self.spm_rate, self.mode = rate, file_rate, spm_rate, mode
        ids = (tokenizer.token_to_id(t) for t in SPECIAL_TOKENS)
        self.special = np.array(sorted(i for i in ids if i is not None))

    def __call__(self, doc: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.rate == 0 or rng.random() >= self.rate:
            return doc
        if self.mode == "document":
            return self._whole(doc, rng)
        ids = self.ids
        has_metadata = len(doc) > 0 and doc[0] == ids.repo_name
        bounds = np.flatnonzero((doc == ids.file_sep) | (doc == ids.eos))
        pieces = [doc[: bounds[0]] if len(bounds) else doc]  # the <repo_name> part: never transformed
        for i, b in enumerate(bounds):
            end = bounds[i + 1] if i + 1 < len(bounds) else len(doc)
            chunk = doc[b + 1 : end]
            pieces.append(doc[b : b + 1])
            # a file that spells out FIM tokens itself stays as it is: its transform could not be undone
            if (
                doc[b] == ids.file_sep
                and len(chunk)
                and rng.random() < self.file_rate
                and not self._has_fim(chunk)
            ):
                pieces.append(self.permute(chunk, rng, has_metadata))
            else:
                pieces.append(chunk)
        return np.concatenate(pieces)

    def _whole(self, doc: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A document as one file: what follows its leading special tokens, up to its closing
        ``<|endoftext|>``, transformed with ``file_rate``."""
        head = 0
        while head < len(doc) and np.isin(doc[head], self.special):
            head += 1
        end = len(doc) - 1 if len(doc) > head and doc[-1] == self.ids.eos else len(doc)
        chunk = doc[head:end]
        if len(chunk) and rng.random() < self.file_rate and not self._has_fim(chunk):
            return np.concatenate([doc[:head], self.permute(chunk, rng, False), doc[end:]])
        return doc

    def _has_fim(self, chunk: np.ndarray) -> bool:
        i = self.ids
        return bool(((chunk == i.prefix) | (chunk == i.middle) | (chunk == i.suffix)).any())

    def permute(self, chunk: np.ndarray, rng: np.random.Generator, has_metadata: bool) -> np.ndarray:
        """One file chunk as a PSM or SPM example (the draws are made even when the text is empty)."""
        text = decode(self.tok, chunk.tolist())
        head = ""
        if has_metadata:
            cut = text.find("\n") + 1 if "\n" in text else len(text)
            head, text = text[:cut], text[cut:]
        spm = rng.random() < self.spm_rate
        lo, hi = np.sort(rng.integers(0, len(text) + 1, size=2))
        prefix, middle, suffix = encode_batch(self.tok, [head + text[:lo], text[lo:hi], text[hi:]])
        i = self.ids
        if spm:
            parts = [[i.prefix, i.suffix], suffix, [i.middle], prefix, middle]
        else:
            parts = [[i.prefix], prefix, [i.suffix], suffix, [i.middle], middle]
        return np.fromiter((t for p in parts for t in p), dtype=chunk.dtype)


def undo_fim(doc: list[int] | np.ndarray, tokenizer: Tokenizer) -> str:
    """The text of a document with every FIM chunk put back in order: the inverse of ``Fim`` (either mode)."""
    ids = FimIds.of(tokenizer)
    doc = np.asarray(doc)
    bounds = np.flatnonzero((doc == ids.file_sep) | (doc == ids.eos))
    first = doc[: bounds[0]] if len(bounds) else doc
    starts = np.flatnonzero(first == ids.prefix)  # mode "document": the chunk after the leading tokens
    pieces = [first[: starts[0]], _undo_chunk(first[starts[0] :], ids)] if len(starts) else [first]
    for k, b in enumerate(bounds):
        end = bounds[k + 1] if k + 1 < len(bounds) else len(doc)
        pieces.append(doc[b : b + 1])
        pieces.append(_undo_chunk(doc[b + 1 : end], ids))
    return "".join(decode(tokenizer, p.tolist()) for p in pieces)


def _undo_chunk(chunk: np.ndarray, ids: FimIds) -> np.ndarray:
    if not len(chunk) or chunk[0] != ids.prefix:
        return chunk
    m = int(np.flatnonzero(chunk == ids.middle)[0])
    if len(chunk) > 1 and chunk[1] == ids.suffix:  # SPM: suffix, then prefix + middle
        return np.concatenate([chunk[m + 1 :], chunk[2:m]])
    s = int(np.flatnonzero(chunk == ids.suffix)[0])
    return np.concatenate([chunk[1:s], chunk[m + 1 :], chunk[s + 1 : m]])
