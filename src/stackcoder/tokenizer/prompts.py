"""Prompts in the formats StarCoder2 was trained on (recipe.md §2), built from the tokenizer's own
special tokens, so callers never spell them: file-level FIM (PSM or SPM) and repository-level FIM,
where the repository's other files come first as in a training document with metadata and the edited
file is a FIM chunk whose prefix starts with its path (what `train/fim.py` makes). `generate`, the
server and the FIM evaluation share them: token ids (`fim_ids`, `repo_fim_ids`: each part encoded on
its own, so text never merges with a special token), or text (`fim_text`) for a backend that is
given a string and turns the special tokens' strings back into their ids."""

from __future__ import annotations

from tokenizers import Tokenizer

from stackcoder.errors import UserError
from stackcoder.tokenizer.files import encode
from stackcoder.tokenizer.special_tokens import FILE_SEP, FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX, REPO_NAME


def _ids(tok: Tokenizer, *names: str) -> list[int]:
    ids = [tok.token_to_id(n) for n in names]
    missing = [n for n, i in zip(names, ids, strict=True) if i is None]
    if missing:
        raise UserError(f"the tokenizer has no {', '.join(missing)} token: it cannot build this prompt")
    return ids


def fim_ids(
    tok: Tokenizer, prefix: str, suffix: str, path: str | None = None, spm: bool = False
) -> list[int]:
    """PSM: <fim_prefix>[path\\n]prefix<fim_suffix>suffix<fim_middle>
    SPM: <fim_prefix><fim_suffix>suffix<fim_middle>[path\\n]prefix (both as `train/fim.py` makes them)"""
    pre, suf, mid = _ids(tok, FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE)
    head = f"{path}\n" if path is not None else ""
    if spm:
        return [pre, suf, *encode(tok, suffix), mid, *encode(tok, head + prefix)]
    return [pre, *encode(tok, head + prefix), suf, *encode(tok, suffix), mid]


def fim_text(prefix: str, suffix: str, path: str | None = None, spm: bool = False) -> str:
    """`fim_ids` as text, the special tokens spelled out (plain concatenation: code is full of braces)."""
    head = f"{path}\n" if path is not None else ""
    if spm:
        return FIM_PREFIX + FIM_SUFFIX + suffix + FIM_MIDDLE + head + prefix
    return FIM_PREFIX + head + prefix + FIM_SUFFIX + suffix + FIM_MIDDLE


def repo_fim_ids(
    tok: Tokenizer,
    repo: str,
    files: list[tuple[str, str]],
    path: str,
    prefix: str,
    suffix: str,
    spm: bool = False,
) -> list[int]:
    """<repo_name>repo<file_sep>a.py\\ntext…<file_sep> then the edited file as in `fim_ids`:
    <fim_prefix>path\\nprefix<fim_suffix>suffix<fim_middle> (PSM) or
    <fim_prefix><fim_suffix>suffix<fim_middle>path\\nprefix (SPM)"""
    repo_name, file_sep = _ids(tok, REPO_NAME, FILE_SEP)
    ids = [repo_name, *encode(tok, repo)]
    for name, text in files:
        ids += [file_sep, *encode(tok, f"{name}\n{text}")]
    return [*ids, file_sep, *fim_ids(tok, prefix, suffix, path, spm)]
