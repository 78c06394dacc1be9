import json
import os
from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from stackcoder.errors import UserError
from stackcoder.tokenizer.files import (
    check_special_tokens,
    decode,
    encode,
    encode_batch,
    load_tokenizer,
    save_tokenizer,
)
from stackcoder.tokenizer.special_tokens import (
    EOS,
    FILE_SEP,
    FIM_MIDDLE,
    FIM_PAD,
    FIM_PREFIX,
    FIM_SUFFIX,
    MIN_VOCAB_SIZE,
    REPO_NAME,
    SPECIAL_TOKENS,
)
from stackcoder.tokenizer.train_bpe import new_tokenizer, train_tokenizer

# what code and text really contain, beyond ASCII
EDGE_CASES = [
    "",
    " ",
    "\n",
    "    \n\n\t\t\n   ",
    "line one\r\nline two\r\n\r\n",
    "old mac\rline\r",
    "\ttab\tseparated\tvalues\t\n",
    "trailing spaces   \nand\u00a0no-break\u2009thin\u3000ideographic\u200bzero-width",
    "\ufeffBOM at the start",
    "form\x0cfeed and vertical\x0btab and \x00 NUL and \x1b[31m escapes",
    "line\u2028separator\u2029paragraph\x85next-line",
    "emoji 🙂👍🏽🇺🇸 family 👨‍👩‍👧‍👦 and ❤️",
    "e\u0301 combining, Å vs A\u030a (no normalization)",
    "中文注释 日本語 한국어 Ελληνικά Русский עברית العربية हिन्दी",
    "math: ∀x∈ℝ, x² ≥ 0; ½ ⅓ ①②③ and Arabic-Indic ٣٤٥",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 astral 𐍈 and private use \ue000",
    "don't I'll you're we've 'quoted' \"double\"",
    "x = 1234567890; y = 3.14159e-10; z = 0xDEADBEEF",
    "<fim_prefix>def f(<fim_suffix>)\n<fim_middle>x",
    "<|endoftext|><|endoftext|><file_sep><repo_name>",
    "<fim_mid <fim_middle <<fim_middle>> </fim_middle> <FIM_MIDDLE> <|endoftext|",
    "   leading and trailing whitespace   ",
    "a" * 5000,
    " " * 1000 + "\n" * 100,
]


def test_each_special_token_is_one_id_equal_to_its_index(trained):
    for i, token in enumerate(SPECIAL_TOKENS):
        assert trained.token_to_id(token) == i
        assert trained.id_to_token(i) == token
        assert encode(trained, token) == [i]
    assert trained.token_to_id(EOS) == 0


def test_vocabulary_has_the_requested_size_and_every_byte(trained):
    assert trained.get_vocab_size() == 2_000
    vocab = trained.get_vocab()
    assert set(pre_tokenizers.ByteLevel.alphabet()) <= set(vocab)
    # bytes come right after the special tokens, in code point order: ids 38..293 whatever the data
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    assert [vocab[c] for c in alphabet] == list(range(38, 38 + 256))
    assert vocab["1"] == 54 and vocab["!"] == 38


def test_digits_are_split_individually(trained):
    assert trained.encode("1234567890").tokens == list("1234567890")
    assert trained.encode("x = 2024").tokens[-4:] == ["2", "0", "2", "4"]
    assert trained.encode("v2").tokens == ["v", "2"]


def test_digit_runs_never_become_merges_even_when_frequent():
    tok = train_tokenizer(["port = 8080\nyear = 2024\nرقم ٣٤٥\n" * 500], vocab_size=400, min_frequency=2)
    as_text = [decode(tok, [i]) for i in range(len(SPECIAL_TOKENS), tok.get_vocab_size())]
    assert [t for t in as_text if sum(c.isdigit() for c in t) > 1] == []
    assert any(t.endswith("=") for t in as_text)  # the text around the numbers was merged
    assert encode(tok, "8080") == [tok.token_to_id(d) for d in "8080"]
    # any Unicode digit: the bytes of one may merge, two digits never do
    assert [decode(tok, [i]) for i in encode(tok, "٣٤٥")] == ["٣", "٤", "٥"]


def test_round_trip_is_exact_on_every_real_file(trained, code_files):
    texts = list(code_files.values())
    ids = encode_batch(trained, texts)
    decoded = trained.decode_batch(ids, skip_special_tokens=False)
    bad = [p for p, text, back in zip(code_files, texts, decoded, strict=True) if back != text]
    assert bad == []
    assert sum(map(len, ids)) < sum(len(t.encode()) for t in texts)  # it does compress
    assert ids[:20] == [encode(trained, t) for t in texts[:20]]  # batch and single agree


@pytest.mark.parametrize("text", EDGE_CASES, ids=range(len(EDGE_CASES)))
def test_round_trip_is_exact_on_edge_cases(trained, text):
    assert decode(trained, encode(trained, text)) == text


def test_no_normalization_or_prefix_space(trained):
    assert trained.encode("def").tokens == ["def"]  # no "Ġ" (space) added in front
    assert trained.encode(" def").tokens == ["Ġdef"]
    assert encode(trained, "A\u030a") != encode(trained, "Å")


FIM_AND_REPO = [FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX, FIM_PAD, REPO_NAME, FILE_SEP, EOS]
NEIGHBOURS = [
    ("x", "y"),
    ("def f(", "):\n    return"),
    (" ", " "),
    ("\n", "src/main.py\n"),
    ("<", ">"),
    ("fim", "_middle"),
    ("owner/name", "path/one.py"),
    ("123", "456"),
    ("é", "🙂"),
    ("\r\n", "\t"),
]


@pytest.mark.parametrize("token", FIM_AND_REPO)
def test_fim_and_repo_tokens_never_merge_with_neighbours(trained, token):
    tid = trained.token_to_id(token)
    for left, right in NEIGHBOURS:
        # the text on each side is tokenized exactly as it would be alone
        assert encode(trained, left + token + right) == encode(trained, left) + [tid] + encode(trained, right)


def test_repository_document_layout(trained):
    ids = encode(trained, "x<fim_middle>y")
    assert ids == [trained.token_to_id("x"), 2, trained.token_to_id("y")]
    doc = "<repo_name>owner/name<file_sep>path/one.py\nprint(1)\n<file_sep>two.py\nx<|endoftext|>"
    ids = encode(trained, doc)
    assert ids[0] == 5 and ids[-1] == 0 and ids.count(6) == 2
    assert ids[1 : ids.index(6)] == encode(trained, "owner/name")
    assert decode(trained, ids) == doc


def test_training_text_with_special_tokens_spends_no_merges_on_them():
    doc = "<repo_name>acme/widgets<file_sep>src/a.py\nimport os\n<file_sep>src/b.py\nx = 1\n<|endoftext|>"
    tok = train_tokenizer([doc] * 300, vocab_size=500)
    learned = [t for t in tok.get_vocab() if t not in SPECIAL_TOKENS]
    assert not [t for t in learned if "file_sep" in t or "repo_name" in t or "endoftext" in t]
    assert any("widgets" in t for t in learned)  # the text around them was learned


def test_vocab_too_small_and_empty_data_are_user_errors():
    with pytest.raises(UserError, match="at least 294"):
        train_tokenizer(["some text"], vocab_size=MIN_VOCAB_SIZE - 1)
    with pytest.raises(UserError, match="empty"):
        train_tokenizer([], vocab_size=1000)
    smallest = train_tokenizer(["abc abc abc"], vocab_size=MIN_VOCAB_SIZE)
    assert smallest.get_vocab_size() == MIN_VOCAB_SIZE
    assert decode(smallest, encode(smallest, "any text 🙂")) == "any text 🙂"


def test_save_then_load_dir_or_file(trained, tmp_path, code_files):
    out = save_tokenizer(trained, tmp_path / "tok", model_max_length=4096)
    assert sorted(p.name for p in out.iterdir()) == [
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    config = json.loads((out / "tokenizer_config.json").read_text())
    assert (config["bos_token"], config["eos_token"], config["unk_token"]) == (EOS, EOS, EOS)
    assert config["add_prefix_space"] is False and config["model_max_length"] == 4096
    assert config["clean_up_tokenization_spaces"] is False
    saved = json.loads((out / "tokenizer.json").read_text())
    assert saved["normalizer"] is None
    assert saved["pre_tokenizer"]["pretokenizers"][0] == {"type": "Digits", "individual_digits": True}
    assert saved["decoder"]["type"] == "ByteLevel"

    text = next(iter(code_files.values()))
    for path in (out, out / "tokenizer.json", str(out)):
        assert encode(load_tokenizer(path), text) == encode(trained, text)


def test_load_errors_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such tokenizer"):
        load_tokenizer(tmp_path / "missing")
    with pytest.raises(UserError, match="no such tokenizer"):
        load_tokenizer("bigcode/starcoder2-3b")  # a Hub id is not downloaded
    with pytest.raises(UserError, match="no tokenizer.json"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(UserError, match="not a valid tokenizer.json"):
        load_tokenizer(tmp_path)


def test_a_tokenizer_without_the_special_tokens_is_refused_unless_asked(tmp_path):
    plain = new_tokenizer()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    plain.model = models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[])
    plain.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(UserError, match="not a StarCoder2 tokenizer"):
        load_tokenizer(tmp_path)
    assert decode(plain, encode(load_tokenizer(tmp_path, require_special_tokens=False), "ok 1")) == "ok 1"
    with pytest.raises(UserError):
        check_special_tokens(Tokenizer(models.BPE()), "empty")
    with pytest.raises(UserError):
        save_tokenizer(plain, tmp_path / "out")


RELEASED = os.environ.get("STACKCODER_STARCODER2_TOKENIZER")


@pytest.mark.skipif(
    not RELEASED, reason="set STACKCODER_STARCODER2_TOKENIZER to a local copy of the released tokenizer.json"
)
def test_pipeline_matches_the_released_starcoder2_tokenizer(code_files):
    path = Path(RELEASED)
    released = json.loads((path / "tokenizer.json" if path.is_dir() else path).read_text())
    ours = json.loads(new_tokenizer().to_str())
    for part in ("normalizer", "pre_tokenizer", "decoder"):
        assert ours[part] == released[part], part
    tok = load_tokenizer(path)
    assert tok.get_vocab_size() == 49_152
    assert [tok.token_to_id(t) for t in SPECIAL_TOKENS] == list(range(38))
    for text in EDGE_CASES + list(code_files.values()):
        assert decode(tok, encode(tok, text)) == text
