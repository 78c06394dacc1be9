"""Load, check, save and use a StarCoder2 ``tokenizer.json`` (recipe.md §2): the one place that turns
text into ids and back. ``load_tokenizer`` checks the file and the 38 special tokens and turns every
failure into a one-line ``UserError``; ``encode`` never adds special tokens (a special token's string in
the text still becomes its single id); ``decode`` keeps them, so ``decode(tok, encode(tok, text)) == text``
for any string. ``stop_token_ids`` is the set of ids that end generation, shared by ``generate``,
``serve`` and ``eval``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer

from stackcoder.errors import UserError
from stackcoder.tokenizer.special_tokens import EOS, SPECIAL_TOKENS, STOP_TOKENS

MODEL_MAX_LENGTH = 16_384  # StarCoder2's context (recipe.md §3)


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
            raise UserError(f"{path}: no tokenizer.json in this directory (needed to turn text into tokens)")
    elif not p.is_file():
        raise UserError(f"{path}: no such tokenizer (give a directory holding tokenizer.json, or the file)")
    try:
        tok = Tokenizer.from_file(str(p))
    except Exception as e:  # tokenizers raises a bare Exception for any malformed file
        raise UserError(f"{p}: not a valid tokenizer.json ({str(e).splitlines()[0][:200]})") from e
    if require_special_tokens:
        check_special_tokens(tok, str(p))
    return tok


def stop_token_ids(tok: Tokenizer) -> list[int]:
    """Ids of ``STOP_TOKENS`` in this tokenizer (looked up by name; a token it lacks is skipped)."""
    return sorted({i for t in STOP_TOKENS if (i := tok.token_to_id(t)) is not None})
