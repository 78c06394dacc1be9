from stackcoder.tokenizer import special_tokens as S

# recipe.md §2, copied by hand: the order is the vocabulary's
RECIPE_ORDER = [
    "<|endoftext|>",
    "<fim_prefix>",
    "<fim_middle>",
    "<fim_suffix>",
    "<fim_pad>",
    "<repo_name>",
    "<file_sep>",
    "<issue_start>",
    "<issue_comment>",
    "<issue_closed>",
    "<jupyter_start>",
    "<jupyter_text>",
    "<jupyter_code>",
    "<jupyter_output>",
    "<jupyter_script>",
    "<empty_output>",
    "<code_to_intermediate>",
    "<intermediate_to_code>",
    "<pr>",
    "<pr_status>",
    "<pr_is_merged>",
    "<pr_base>",
    "<pr_file>",
    "<pr_base_code>",
    "<pr_diff>",
    "<pr_diff_hunk>",
    "<pr_comment>",
    "<pr_event_id>",
    "<pr_review>",
    "<pr_review_state>",
    "<pr_review_comment>",
    "<pr_in_reply_to_review_id>",
    "<pr_in_reply_to_comment_id>",
    "<pr_diff_hunk_comment_line>",
    "<NAME>",
    "<EMAIL>",
    "<KEY>",
    "<PASSWORD>",
]


def test_the_38_tokens_in_recipe_order():
    assert len(S.SPECIAL_TOKENS) == 38
    assert list(S.SPECIAL_TOKENS) == RECIPE_ORDER
    assert len(set(S.SPECIAL_TOKENS)) == 38


def test_named_constants_have_the_published_ids():
    ids = S.SPECIAL_TOKEN_IDS
    assert (ids[S.EOS], S.EOS_ID) == (0, 0)
    assert [ids[t] for t in (S.FIM_PREFIX, S.FIM_MIDDLE, S.FIM_SUFFIX, S.FIM_PAD)] == [1, 2, 3, 4]
    assert (ids[S.REPO_NAME], ids[S.FILE_SEP]) == (5, 6)
    assert [ids[t] for t in (S.PII_NAME, S.PII_EMAIL, S.PII_KEY, S.PII_PASSWORD)] == [34, 35, 36, 37]


def test_every_token_has_a_named_constant():
    named = {v for k, v in vars(S).items() if k.isupper() and isinstance(v, str)}
    assert named == set(S.SPECIAL_TOKENS)


def test_min_vocab_size_holds_special_tokens_and_bytes():
    assert S.MIN_VOCAB_SIZE == 38 + 256
