"""Where completions come from: `--quantize` loads the local model int8/int4; a server cannot take it."""

from __future__ import annotations

import pytest

from stackcoder.errors import UserError
from stackcoder.eval.backends import open_backend
from stackcoder.model.quant import QuantizedLinear


def test_local_model_quantized(serve_checkpoint):
    backend = open_backend(str(serve_checkpoint), None, quantize="int4", device="cpu")
    assert backend.model.quantize == "int4" and backend.name.endswith("(int4)")
    assert isinstance(backend.model.model.layers[0].self_attn.q_proj, QuantizedLinear)
    with pytest.raises(UserError, match="--quantize applies to --model"):
        open_backend(None, "http://127.0.0.1:1", quantize="int8")
