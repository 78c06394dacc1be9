"""Train StarCoder2's tokenizer: byte-level BPE, digits split one by one (recipe.md §2).

The pipeline is the released StarCoder2 ``tokenizer.json``'s (docs/tokenizer.md says what was
confirmed): no normalizer; pre-tokenizer ``Sequence[Digits(individual_digits=True),
ByteLevel(add_prefix_space=False, use_regex=True)]``, i.e. every digit is its own piece and the rest
is split by GPT-2's regex; a BPE model over the 256 byte symbols with no unknown token; a ByteLevel
decoder. The 38 special tokens come first (``<|endoftext|>`` = 0) and are added tokens, so they are
matched before pre-tokenization and never merge with their neighbours. Saving, loading, encoding and
decoding are in ``files.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from stackcoder.errors import UserError
from stackcoder.tokenizer.special_tokens import MIN_VOCAB_SIZE, SPECIAL_TOKENS

VOCAB_SIZE = 49_152  # recipe.md §2
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
