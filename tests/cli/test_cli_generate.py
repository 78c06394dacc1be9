"""`stackcoder generate` on a saved random debug checkpoint with a tiny real tokenizer: the greedy output
is the library's, FIM requests use the tokenizer's FIM tokens, mistakes exit 2 with one line."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer

from stackcoder.cli import main
from stackcoder.model import Starcoder2, get_size
from stackcoder.model.generate import SamplingParams, generate, generate_text
from stackcoder.model.hf import save_model
from stackcoder.tokenizer.files import stop_token_ids

FIXTURES = Path(__file__).parents[1] / "fixtures" / "model"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = Starcoder2(get_size("debug", vocab_size=400))
    with torch.no_grad():  # spread-out logits, so the output depends on the prompt
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0, 1.0 if "embed" in name else 1.5 / p.shape[-1] ** 0.5)
    path = tmp_path_factory.mktemp("ckpt")
    save_model(model, path, tokenizer_dir=FIXTURES)
    return path


def library(checkpoint: Path, prompt: str, **params) -> str:
    from stackcoder.model.hf import load_model

    model, tok = load_model(checkpoint), Tokenizer.from_file(str(checkpoint / "tokenizer.json"))
    return generate_text(model, tok, [prompt], SamplingParams(**params), stop_token_ids=[0])[0].text


def test_greedy_cli_output_is_the_library_output(checkpoint, capsys):
    assert main(["generate", "--model", str(checkpoint), "--max-new-tokens", "24", "def add(a, b):"]) == 0
    out = capsys.readouterr().out
    assert out == library(checkpoint, "def add(a, b):", max_new_tokens=24)
    assert len(out) > 10
    assert main(["generate", "--model", str(checkpoint), "--max-new-tokens", "24", "import os"]) == 0
    assert capsys.readouterr().out != out  # another prompt, another completion


def test_prompt_from_stdin_and_stop(checkpoint, capsys, monkeypatch):
    full = library(checkpoint, "class Stack:", max_new_tokens=24)
    stop = full[len(full) // 2 :][:2]
    monkeypatch.setattr("sys.stdin", io.StringIO("class Stack:"))
    assert main(["generate", "--model", str(checkpoint), "--max-new-tokens", "24", "--stop", stop]) == 0
    assert capsys.readouterr().out == full[: full.index(stop)]


def test_fill_in_the_middle(checkpoint, capsys):
    from stackcoder.model.hf import load_model

    tok = Tokenizer.from_file(str(checkpoint / "tokenizer.json"))
    prefix, suffix = "def add(a, b):\n    ", "\n\nprint(add(1, 2))\n"
    assert (
        main(["generate", "--model", str(checkpoint), "--max-new-tokens", "16", "--suffix", suffix, prefix])
        == 0
    )
    out = capsys.readouterr().out
    ids = (
        [tok.token_to_id("<fim_prefix>")]
        + tok.encode(prefix).ids
        + [tok.token_to_id("<fim_suffix>")]
        + tok.encode(suffix).ids
        + [tok.token_to_id("<fim_middle>")]
    )
    assert ids[:1] == [1] and ids[-1] == 2  # recipe.md §2 ids
    # generation ends on the server's end tokens (a FIM token too), not on <|endoftext|> alone
    stop = stop_token_ids(tok)
    assert len(stop) == 6
    expected = generate(load_model(checkpoint), [ids], SamplingParams(max_new_tokens=16), stop_token_ids=stop)
    assert out == tok.decode(expected[0], skip_special_tokens=False)


def test_sampling_flags_are_reproducible(checkpoint, capsys):
    args = [
        "generate",
        "--model",
        str(checkpoint),
        "--max-new-tokens",
        "12",
        "--temperature",
        "5",
        "--top-p",
        "0.9",
        "--seed",
        "7",
        "for i in",
    ]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == first


def test_user_errors_exit_2(tmp_path, checkpoint, capsys):
    assert main(["generate", "--model", str(tmp_path / "nope"), "x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such directory" in err and "nothing is downloaded" in err
    no_tok = tmp_path / "no_tok"
    shutil.copytree(checkpoint, no_tok)
    (no_tok / "tokenizer.json").unlink()
    assert main(["generate", "--model", str(no_tok), "x"]) == 2
    assert "no tokenizer.json" in capsys.readouterr().err
    assert main(["generate", "--model", str(checkpoint), "--top-p", "0", "x"]) == 2
    assert "invalid sampling parameters" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_quantized_generation_is_the_library_output(checkpoint, capsys, mode):
    from stackcoder.model.hf import load_model

    args = [
        "generate",
        "--model",
        str(checkpoint),
        "--max-new-tokens",
        "16",
        "--quantize",
        mode,
        "def add(a, b):",
    ]
    assert main(args) == 0
    model, tok = (
        load_model(checkpoint, quantize=mode),
        Tokenizer.from_file(str(checkpoint / "tokenizer.json")),
    )
    params = SamplingParams(max_new_tokens=16)
    assert (
        capsys.readouterr().out
        == generate_text(model, tok, ["def add(a, b):"], params, stop_token_ids=[0])[0].text
    )


def test_cli_defaults_are_the_library_defaults():
    # the flags repeat SamplingParams' defaults so that building the parser does not import torch
    from stackcoder.cli import make_parser

    args = make_parser().parse_args(["generate", "--model", "m", "x"])
    got = {k: getattr(args, k) for k in ("max_new_tokens", "temperature", "top_p", "top_k", "stop", "seed")}
    assert got == SamplingParams().__dict__
