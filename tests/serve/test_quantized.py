"""`stackcoder serve --quantize`: the server on an int8/int4 model gives that model's greedy output."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from tokenizers import Tokenizer

from stackcoder.errors import UserError
from stackcoder.model.generate import SamplingParams, generate_text
from stackcoder.model.hf import load_model
from stackcoder.serve.app import create_app
from stackcoder.serve.config import ServeConfig


@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_server_on_a_quantized_model_is_the_library_greedy_output(serve_checkpoint, mode):
    model = load_model(serve_checkpoint, quantize=mode)
    tok = Tokenizer.from_file(str(serve_checkpoint / "tokenizer.json"))
    want = generate_text(
        model, tok, ["def add(a, b):"], SamplingParams(max_new_tokens=12), stop_token_ids=[0]
    )
    with TestClient(create_app(ServeConfig(model=str(serve_checkpoint), quantize=mode))) as client:
        r = client.post("/generate", json={"inputs": "def add(a, b):", "parameters": {"max_new_tokens": 12}})
        assert r.status_code == 200, r.text
        assert r.json()["generated_text"] == want[0].text
        assert client.get("/info").json()["model_dtype"] == "bfloat16"


def test_bad_quantize_value_is_refused():
    with pytest.raises(UserError, match="int8 or int4"):
        ServeConfig(model="m", quantize="int3")
