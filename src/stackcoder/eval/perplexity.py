"""Perplexity per language on the held-out repositories' files: exp(mean negative log-likelihood per
token), each file scored left to right in windows of the model's context (the first token of a file is
only context). Needs the weights (``--model``): completion servers do not return prompt log-probs."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import torch

from stackcoder.eval.backends import Backend
from stackcoder.eval.heldout import heldout_files
from stackcoder.tokenizer.files import encode


@torch.inference_mode()
def run(dataset: str, backend: Backend, max_tokens_per_file: int = 4096) -> dict[str, Any]:
    from stackcoder.errors import UserError

    if getattr(backend, "model", None) is None or not hasattr(backend.model, "config"):
        raise UserError("perplexity needs the model's weights: use --model DIR, not --server")
    model, tok = backend.model, backend.tokenizer
    window = min(model.config.max_position_embeddings, 2048)
    device = next(model.parameters()).device
    nll, count = defaultdict(float), defaultdict(int)
    for files in heldout_files(dataset).values():
        for f in files:
            ids = encode(tok, f["content"])[:max_tokens_per_file]
            for start in range(0, max(0, len(ids) - 1), window):
                chunk = torch.tensor([ids[start : start + window + 1]], device=device)
                if chunk.shape[1] < 2:
                    continue
                _, loss = model(chunk[:, :-1], chunk[:, 1:])
                n = chunk.shape[1] - 1
                for key in (f["language"] or "?", "all"):
                    nll[key] += float(loss) * n
                    count[key] += n
    per_language = {
        k: {"tokens": count[k], "perplexity": round(math.exp(nll[k] / count[k]), 3)} for k in sorted(count)
    }
    scores = {"perplexity": per_language["all"]["perplexity"]} if "all" in per_language else {}
    return {"scores": scores, "per_language": per_language}
