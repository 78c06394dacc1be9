"""A small random StarCoder2 checkpoint (the debug size, the fixture tokenizer with StarCoder2's
special tokens) and the real app on it, for the server tests. Nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("fastapi")

FIXTURES = Path(__file__).parents[1] / "fixtures" / "model"


@pytest.fixture(scope="session")
def serve_checkpoint(tmp_path_factory) -> Path:
    from stackcoder.model import Starcoder2, get_size
    from stackcoder.model.hf import save_model

    torch.manual_seed(0)
    model = Starcoder2(get_size("debug", vocab_size=400, max_position_embeddings=512))
    with torch.no_grad():  # spread-out logits, so the output depends on the prompt
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0, 1.0 if "embed" in name else 1.5 / p.shape[-1] ** 0.5)
    path = tmp_path_factory.mktemp("serve-ckpt")
    save_model(model, path, tokenizer_dir=FIXTURES)
    return path
