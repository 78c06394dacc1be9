"""`stackcoder generate --suffix` and the server's `/v1/completions` with `suffix` end the same FIM
request at the same token: both take their end tokens from `special_tokens.STOP_TOKENS`. The model is a
random debug checkpoint whose `lm_head` rows are swapped so that, at a chosen step, its greedy choice
becomes a given stop token instead of an ordinary one (the steps before are unchanged: the embeddings
are untied). A malformed tokenizer.json is a one-line error in both verbs, and so are bad settings
(the config classes raise `UserError` themselves)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from stackcoder.cli import main
from stackcoder.model import Starcoder2, get_size
from stackcoder.model.generate import SamplingParams, generate
from stackcoder.model.hf import load_model, save_model
from stackcoder.serve.app import create_app
from stackcoder.serve.config import ServeConfig
from stackcoder.tokenizer.files import decode, load_tokenizer, stop_token_ids
from stackcoder.tokenizer.prompts import fim_ids
from stackcoder.tokenizer.special_tokens import STOP_TOKENS

FIXTURES = Path(__file__).parents[1] / "fixtures" / "model"
PREFIX, SUFFIX = "def add(a, b):\n    ", "\n\nprint(add(1, 2))\n"
NEW = 12  # tokens asked for; the stop comes earlier
AT = 3  # the step at which the stop token is forced (this model picks <fim_prefix> at step 4)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """`stackcoder generate`'s test checkpoint (tests/cli), untied; its FIM output starts with ordinary
    tokens (the server tests' checkpoint answers this prompt with <fim_middle> straight away)."""
    torch.manual_seed(0)
    model = Starcoder2(get_size("debug", vocab_size=400, tie_word_embeddings=False))
    with torch.no_grad():  # spread-out logits, so the output depends on the prompt
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0, 1.0 if "embed" in name else 1.5 / p.shape[-1] ** 0.5)
    path = tmp_path_factory.mktemp("base")
    save_model(model, path, tokenizer_dir=FIXTURES)
    return path


def test_the_cli_the_server_and_eval_use_one_set_of_stop_ids(base):
    tok = load_tokenizer(base)
    ids = stop_token_ids(tok)
    assert ids == sorted(tok.token_to_id(t) for t in STOP_TOKENS) and len(ids) == 6
    with TestClient(create_app(ServeConfig(model=str(base), prefix_cache_mb=0))) as client:
        assert client.app.state.service.engine.stop_ids == set(ids)
    from stackcoder.eval.backends import LocalModel

    assert LocalModel(str(base), device="cpu").stop_ids == ids


@pytest.mark.parametrize("stop", STOP_TOKENS)
def test_generate_and_the_server_end_a_fim_request_at_the_same_token(base, tmp_path, capsys, stop):
    tok = load_tokenizer(base)
    prompt = fim_ids(tok, PREFIX, SUFFIX)
    free = generate(load_model(base), [prompt], SamplingParams(max_new_tokens=NEW))[0]  # no end tokens
    stop_id, ordinary = tok.token_to_id(stop), free[AT]
    assert len(free) == NEW and ordinary not in free[:AT] and stop_id not in free[: AT + 1]
    model = load_model(base)
    with torch.no_grad():  # the stop token takes the logit `ordinary` had, and the other way round
        model.lm_head.weight[[stop_id, ordinary]] = model.lm_head.weight[[ordinary, stop_id]]
    ckpt = tmp_path / "ckpt"
    save_model(model, ckpt, tokenizer_dir=FIXTURES)
    expected = decode(tok, free[:AT])

    args = ["generate", "--model", str(ckpt), "--max-new-tokens", str(NEW), "--suffix", SUFFIX, PREFIX]
    assert main(args) == 0
    assert capsys.readouterr().out == expected

    config = ServeConfig(model=str(ckpt), fim_order="psm", prefix_cache_mb=0)  # generate's order: PSM
    with TestClient(create_app(config)) as client:
        body = {"prompt": PREFIX, "suffix": SUFFIX, "max_tokens": NEW, "temperature": 0}
        r = client.post("/v1/completions", json=body)
        assert r.status_code == 200, r.text
        choice, usage = r.json()["choices"][0], r.json()["usage"]
        assert choice["text"] == expected and choice["finish_reason"] == "stop"
        assert usage["completion_tokens"] == AT and usage["prompt_tokens"] == len(prompt)


def test_a_malformed_tokenizer_is_one_line_in_generate_and_serve(base, tmp_path, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(base, bad)
    (bad / "tokenizer.json").write_text("{not json")
    assert main(["generate", "--model", str(bad), "--suffix", "x", "y"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a valid tokenizer.json" in err
    assert main(["serve", "--model", str(bad), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a valid tokenizer.json" in err


def test_bad_settings_are_one_line_in_generate_and_serve(base, capsys):
    assert main(["serve", "--model", str(base), "--max-batch", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "max_batch and max_new_tokens must be >= 1" in err
    assert main(["generate", "--model", str(base), "--top-p", "1.5", "x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid sampling parameters" in err
