"""The 38 special tokens of StarCoder2's tokenizer, in vocabulary order (recipe.md §2).

A token's id is its index here: ``<|endoftext|>`` is 0, ``<fim_prefix>`` 1, and so on. This holds for
tokenizers trained by ``train_bpe`` and for the released StarCoder2 ``tokenizer.json``; code that gets
a tokenizer from elsewhere should still look ids up by name (``tokenizer.token_to_id(FIM_MIDDLE)``).
"""

from __future__ import annotations

# end of a document; also BOS/UNK/PAD in the released tokenizer_config.json
EOS = "<|endoftext|>"

# fill-in-the-middle (§2: PSM is <fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>{middle})
FIM_PREFIX = "<fim_prefix>"
FIM_MIDDLE = "<fim_middle>"
FIM_SUFFIX = "<fim_suffix>"
FIM_PAD = "<fim_pad>"

# repository-level documents: <repo_name>owner/name<file_sep>path\ncode<file_sep>...
REPO_NAME = "<repo_name>"
FILE_SEP = "<file_sep>"

# GitHub issues
ISSUE_START = "<issue_start>"
ISSUE_COMMENT = "<issue_comment>"
ISSUE_CLOSED = "<issue_closed>"

# Jupyter notebooks (structured and as scripts)
JUPYTER_START = "<jupyter_start>"
JUPYTER_TEXT = "<jupyter_text>"
JUPYTER_CODE = "<jupyter_code>"
JUPYTER_OUTPUT = "<jupyter_output>"
JUPYTER_SCRIPT = "<jupyter_script>"
EMPTY_OUTPUT = "<empty_output>"

# LLVM IR pairs
CODE_TO_INTERMEDIATE = "<code_to_intermediate>"
INTERMEDIATE_TO_CODE = "<intermediate_to_code>"

# pull requests
PR = "<pr>"
PR_STATUS = "<pr_status>"
PR_IS_MERGED = "<pr_is_merged>"
PR_BASE = "<pr_base>"
PR_FILE = "<pr_file>"
PR_BASE_CODE = "<pr_base_code>"
PR_DIFF = "<pr_diff>"
PR_DIFF_HUNK = "<pr_diff_hunk>"
PR_COMMENT = "<pr_comment>"
PR_EVENT_ID = "<pr_event_id>"
PR_REVIEW = "<pr_review>"
PR_REVIEW_STATE = "<pr_review_state>"
PR_REVIEW_COMMENT = "<pr_review_comment>"
PR_IN_REPLY_TO_REVIEW_ID = "<pr_in_reply_to_review_id>"
PR_IN_REPLY_TO_COMMENT_ID = "<pr_in_reply_to_comment_id>"
PR_DIFF_HUNK_COMMENT_LINE = "<pr_diff_hunk_comment_line>"

# PII placeholders written by the redaction stage (§1.6); there is no IP token
PII_NAME = "<NAME>"
PII_EMAIL = "<EMAIL>"
PII_KEY = "<KEY>"
PII_PASSWORD = "<PASSWORD>"

# vocabulary order: never reorder, ids are positions
SPECIAL_TOKENS: tuple[str, ...] = (
    EOS,
    FIM_PREFIX,
    FIM_MIDDLE,
    FIM_SUFFIX,
    FIM_PAD,
    REPO_NAME,
    FILE_SEP,
    ISSUE_START,
    ISSUE_COMMENT,
    ISSUE_CLOSED,
    JUPYTER_START,
    JUPYTER_TEXT,
    JUPYTER_CODE,
    JUPYTER_OUTPUT,
    JUPYTER_SCRIPT,
    EMPTY_OUTPUT,
    CODE_TO_INTERMEDIATE,
    INTERMEDIATE_TO_CODE,
    PR,
    PR_STATUS,
    PR_IS_MERGED,
    PR_BASE,
    PR_FILE,
    PR_BASE_CODE,
    PR_DIFF,
    PR_DIFF_HUNK,
    PR_COMMENT,
    PR_EVENT_ID,
    PR_REVIEW,
    PR_REVIEW_STATE,
    PR_REVIEW_COMMENT,
    PR_IN_REPLY_TO_REVIEW_ID,
    PR_IN_REPLY_TO_COMMENT_ID,
    PR_DIFF_HUNK_COMMENT_LINE,
    PII_NAME,
    PII_EMAIL,
    PII_KEY,
    PII_PASSWORD,
)

# id of each token in our (and the released) vocabulary
SPECIAL_TOKEN_IDS: dict[str, int] = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
EOS_ID = SPECIAL_TOKEN_IDS[EOS]

# the 256 byte symbols of byte-level BPE come right after the special tokens
BYTE_ALPHABET_SIZE = 256
MIN_VOCAB_SIZE = len(SPECIAL_TOKENS) + BYTE_ALPHABET_SIZE

# the tokens that end generation (`generate`, `serve`, `eval`): the end of a document or of a file in a
# repository-level document, or a FIM token, which never belongs inside a middle (ids: files.stop_token_ids)
STOP_TOKENS: tuple[str, ...] = (EOS, FILE_SEP, FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX, FIM_PAD)
