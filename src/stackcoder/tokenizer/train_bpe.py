"""Train, save and load StarCoder2's tokenizer: byte-level BPE, digits split one by one (recipe.md §2).

The pipeline is the released StarCoder2 ``tokenizer.json``'s (docs/tokenizer.md says what was
confirmed): no normalizer; pre-tokenizer ``Sequence[Digits(individual_digits=True),
ByteLevel(add_prefix_space=False, use_regex=True)]``, i.e. every digit is its own piece and the rest
is split by GPT-2's regex; a BPE model over the 256 byte symbols with no unknown token; a ByteLevel
decoder. The 38 special tokens come first (``<|endoftext|>`` = 0) and are added tokens, so they are
matched before pre-tokenization and never merge with their neighbours. Decoding is exact:
``decode(tok, encode(tok, text)) == text`` for any string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from stackcoder.errors import UserError
from stackcoder.tokenizer.special_tokens import EOS, MIN_VOCAB_SIZE, SPECIAL_TOKENS

VOCAB_SIZE = 49_152  # recipe.md §2
MODEL_MAX_LENGTH = 16_384  # StarCoder2's context (recipe.md §3)
# BPE training settings beyond the vocabulary size are unpublished (recipe.md §2): pairs seen once
# are not merged, and token length is not capped.
MIN_FREQUENCY = 2

_SPECIAL_RE = re.compile("|".join(re.escape(t) for t in SPECIAL_TOKENS))


def new_tokenizer() -> Tokenizer:
    """An untrained tokenizer with StarCoder2's normalizer/pre-tokenizer/decoder pipeline."""
    tok = Tokenizer(models.BPE())  # no unk_token: the byte alphabet covers every input
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            # digits first, so ByteLevel's regex never sees " 123" (" " becomes a piece of its own)
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
        ]
    )
    # ByteLevel post-processing only fixes offsets (trim_offsets=False keeps them on the raw text)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    return tok


def _without_special_tokens(texts: Iterable[str], counter: list[int]) -> Iterator[str]:
    # At encode time special tokens are cut out before pre-tokenization; training sees the same
    # pieces, so no merges are spent on "<file_sep>"'s characters.
    for text in texts:
        counter[0] += 1
        if _SPECIAL_RE.search(text) is None:
            yield text
        else:
            yield from (piece for piece in _SPECIAL_RE.split(text) if piece)


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int = VOCAB_SIZE,
    min_frequency: int = MIN_FREQUENCY,
    show_progress: bool = False,
) -> Tokenizer:
    """Train byte-level BPE on ``texts`` (streamed once) with the special tokens at ids 0..37.

    The vocabulary holds the special tokens, the 256 byte symbols and then the merges; on a small
    corpus it can stop short of ``vocab_size`` when no pair is seen ``min_frequency`` times.
    """
    if vocab_size < MIN_VOCAB_SIZE:
        raise UserError(
            f"vocabulary size {vocab_size} is too small: it must hold {len(SPECIAL_TOKENS)} special tokens "
            f"and 256 bytes (at least {MIN_VOCAB_SIZE})"
        )
    tok = new_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress,
    )
    seen = [0]
    tok.train_from_iterator(_without_special_tokens(texts, seen), trainer=trainer)
    if seen[0] == 0:
        raise UserError("no training text: the data is empty")
    return tok


def encode(tok: Tokenizer, text: str) -> list[int]:
    """Token ids of ``text``; special-token strings in it become their single id."""
    return tok.encode(text, add_special_tokens=False).ids


def encode_batch(tok: Tokenizer, texts: list[str]) -> list[list[int]]:
    """Token ids of many texts, encoded in parallel; no offsets are computed, which saves time."""
    return [e.ids for e in tok.encode_batch_fast(texts, add_special_tokens=False)]


def decode(tok: Tokenizer, ids: Iterable[int]) -> str:
    """The exact text of ``ids``, special tokens included (tokenizers skips them by default)."""
    return tok.decode(list(ids), skip_special_tokens=False)


def tokenizer_config(model_max_length: int = MODEL_MAX_LENGTH) -> dict:
    """``tokenizer_config.json`` for ``transformers.AutoTokenizer``: the released StarCoder2 settings,
    except the class and ``clean_up_tokenization_spaces`` (see docs/tokenizer.md)."""
    return {
        # PreTrainedTokenizerFast runs tokenizer.json as is; transformers 5 rebuilds a GPT2Tokenizer's
        # pre-tokenizer as plain ByteLevel, dropping the Digits step
        "tokenizer_class": "PreTrainedTokenizerFast",
        "add_prefix_space": False,
        "bos_token": EOS,
        "eos_token": EOS,
        "unk_token": EOS,
        "additional_special_tokens": list(SPECIAL_TOKENS[1:]),
        "added_tokens_decoder": {
            str(i): {
                "content": t,
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": True,
            }
            for i, t in enumerate(SPECIAL_TOKENS)
        },
        # True would delete the space in "x ." when decoding: decoding must give back the text exactly
        "clean_up_tokenization_spaces": False,
        "model_max_length": model_max_length,
    }


def save_tokenizer(tok: Tokenizer, out_dir: str | Path, model_max_length: int = MODEL_MAX_LENGTH) -> Path:
    """Write ``tokenizer.json``, ``tokenizer_config.json`` and ``special_tokens_map.json`` to ``out_dir``
    so that ``transformers.AutoTokenizer.from_pretrained(out_dir)`` loads it offline. Returns the dir."""
    check_special_tokens(tok, "the tokenizer to save")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    config = tokenizer_config(model_max_length)
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    special_map = {k: config[k] for k in ("bos_token", "eos_token", "unk_token", "additional_special_tokens")}
    (out / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2) + "\n")
    return out


def check_special_tokens(tok: Tokenizer, where: str) -> None:
    """Raise ``UserError`` unless each of the 38 special tokens encodes to one id of its own."""
    bad = [t for t in SPECIAL_TOKENS if tok.token_to_id(t) is None or encode(tok, t) != [tok.token_to_id(t)]]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise UserError(f"{where} is not a StarCoder2 tokenizer: no single token for {shown}")


def load_tokenizer(path: str | Path, require_special_tokens: bool = True) -> Tokenizer:
    """Load a local ``tokenizer.json``, or the one in directory ``path`` (ours or the released one).

    Never downloads: a Hub model id is not a path. With ``require_special_tokens`` the 38 special
    tokens must each be a single token (ids are looked up by name, so their order may differ).
    """
    p = Path(path)
    if p.is_dir():
        p = p / "tokenizer.json"
        if not p.is_file():
            raise UserError(f"{path}: no tokenizer.json in this directory")
    elif not p.is_file():
        raise UserError(f"{path}: no such tokenizer (give a directory holding tokenizer.json, or the file)")
    try:
        tok = Tokenizer.from_file(str(p))
    except Exception as e:  # tokenizers raises a bare Exception for any malformed file
        raise UserError(f"{p}: not a valid tokenizer.json ({str(e).splitlines()[0][:200]})") from e
    if require_special_tokens:
        check_special_tokens(tok, str(p))
    return tok
