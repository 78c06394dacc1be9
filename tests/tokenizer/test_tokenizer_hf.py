"""The saved directory works with transformers.AutoTokenizer, offline, with the same ids as ours."""

import pytest

from stackcoder.tokenizer.files import decode, encode, encode_batch, save_tokenizer
from stackcoder.tokenizer.special_tokens import EOS, SPECIAL_TOKENS

transformers = pytest.importorskip("transformers", reason="transformers is not installed")


@pytest.fixture(scope="module")
def hf_tokenizer(trained, tmp_path_factory):
    out = save_tokenizer(trained, tmp_path_factory.mktemp("tok"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")  # a network lookup would fail the test, not wait
        return transformers.AutoTokenizer.from_pretrained(str(out))


def test_special_tokens_and_config(hf_tokenizer):
    assert hf_tokenizer.eos_token == hf_tokenizer.bos_token == hf_tokenizer.unk_token == EOS
    assert hf_tokenizer.eos_token_id == 0
    assert set(hf_tokenizer.all_special_tokens) == set(SPECIAL_TOKENS)
    assert hf_tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == list(range(38))
    assert hf_tokenizer.model_max_length == 16_384
    # the pipeline was kept as saved (transformers' GPT2Tokenizer would drop the Digits step)
    assert "Digits" in hf_tokenizer.backend_tokenizer.pre_tokenizer.__getstate__().decode()


def test_same_ids_and_exact_decoding_on_real_code(hf_tokenizer, trained, code_files):
    # every kind of file, ~0.5 MB: the whole set is round-tripped in test_train_bpe already
    texts = [t for t in code_files.values() if len(t) < 50_000][::2]
    theirs = hf_tokenizer(texts, add_special_tokens=True, verbose=False)["input_ids"]  # adds no BOS/EOS
    assert theirs == encode_batch(trained, texts)
    back = hf_tokenizer.batch_decode(theirs)
    assert back == texts


def test_special_tokens_in_text_and_decode(hf_tokenizer, trained):
    text = "<repo_name>a/b<file_sep>x.py\n<fim_prefix>def f(<fim_suffix>)<fim_middle>x  .  ,<|endoftext|>"
    ids = hf_tokenizer(text)["input_ids"]
    assert ids == encode(trained, text)
    assert hf_tokenizer.decode(ids) == decode(trained, ids) == text
    assert hf_tokenizer.decode(ids, skip_special_tokens=True) == "a/bx.py\ndef f()x  .  ,"
